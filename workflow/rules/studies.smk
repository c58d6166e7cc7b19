# Studies (config `studies:`, docs/studies.md): one variation over a base, one point per
# value (settings.studies), each point trained once per model and training seed and measured
# at its last kimg. The points reuse the train and evaluate rules (`use rule ... with:`): the
# same commands, with each point's own paths (layout.study_root) and its own config slice,
# so a job's params hold its own point's value only and editing one point reruns that
# point's jobs. A fraction below 1 trains on a nested subset made from the prepared dataset
# (ganrepro data subset); the evaluation always measures against the whole dataset's reals.


rule subset_dataset:
    input:
        manifest=layout.manifest(),
        images=layout.images(),
    output:
        manifest=layout.subset_manifest(),
        images=layout.subset_images(),
    params:
        data=subpath(input.manifest, parent=True),
        out=subpath(output.manifest, parent=True),
    log:
        layout.log("subset_dataset", "{dataset}", "fraction-{fraction}"),
    shell:
        "ganrepro data subset --data {params.data:q} --fraction {wildcards.fraction} --out {params.out:q}"
        " > {log} 2>&1"


use rule train as study_train with:
    input:
        unpack(study_data),
        previous=study_previous_snapshot,
    output:
        layout.snapshot(root=layout.study_root()),
    params:
        cfg=study_train_config,
        data=lambda wildcards, input: str(Path(input.manifest).parent),
        out=layout.run_dir(root=layout.study_root()),
        launcher=torch_launcher,
    log:
        layout.log("train", "studies", "{study}", "{point}", layout.train_job(kimg="{kimg}")),
    benchmark:
        layout.benchmark("train", "studies", "{study}", "{point}", layout.train_job(kimg="{kimg}"))


use rule evaluate as study_evaluate with:
    input:
        snapshot=layout.snapshot(root=layout.study_root()),
        stats=stats_file,
        manifest=layout.manifest(),
    output:
        layout.metrics(root=layout.study_root()),
    params:
        data=subpath(input.manifest, parent=True),
        cfg=study_evaluate_config,
    log:
        layout.log("evaluate", "studies", "{study}", "{point}", layout.evaluate_job()),
    benchmark:
        layout.benchmark("evaluate", "studies", "{study}", "{point}", layout.evaluate_job())


rule studies:
    # A named target for the studies alone: `snakemake studies`.
    input:
        study_metrics(),
    localrule: True
