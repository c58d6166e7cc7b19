# Studies (config `studies:`, docs/studies.md): one variation over a base, one point per
# value (settings.studies), each point trained once per model and training seed and measured
# at its last kimg. The points reuse the train and evaluate rules (`use rule ... with:`): the
# same commands, with each point's own paths (layout.study_root) and its own config slice,
# so a job's params hold its own point's value only and editing one point reruns that
# point's jobs. A fraction below 1 trains on a nested subset made from the prepared dataset
# (ganrepro data subset); the evaluation always measures against the whole dataset's reals.


def point_of(wildcards):
    return POINTS[(wildcards.study, wildcards.point)]


def study_data(wildcards):
    """The prepared dataset a point's runs train on: a subset, or the dataset itself."""
    p = point_of(wildcards)
    if p.subset:
        fraction = studies.fraction_label(p.value)
        return {"manifest": layout.subset_manifest(p.dataset, fraction),
                "images": layout.subset_images(p.dataset, fraction)}
    return {"manifest": layout.manifest(p.dataset), "images": layout.images(p.dataset)}


def study_previous_snapshot(wildcards):
    """With train.segments, a point's job of checkpoint K resumes from the one before it."""
    p = point_of(wildcards)
    earlier = [k for k in p.kimg if k < int(wildcards.kimg)] if SEGMENTS else []
    root = layout.study_root(wildcards.study, wildcards.point)
    return [layout.snapshot(wildcards.dataset, wildcards.model, wildcards.seed, earlier[-1], root=root)] if earlier else []


def study_train_config(wildcards):
    """As train_config, from the point's config: the job of checkpoint K trains to K (the
    point's last kimg, or with train.segments one interval)."""
    p = point_of(wildcards)
    kimgs = [k for k in p.kimg if k <= int(wildcards.kimg)]
    return _job_config(wildcards.dataset, [wildcards.model], cfg=p.config, kimg=kimgs, seeds=[int(wildcards.seed)])


def study_evaluate_config(wildcards):
    """As evaluate_config, planned against the point's last kimg."""
    p = point_of(wildcards)
    metrics = protocol.job_metrics(config["metrics"], protocol.stage_of(int(wildcards.kimg), p.kimg[-1]))
    return _evaluate_config(wildcards.dataset, metrics, kimg=[int(wildcards.kimg)])


STUDY_JOB = layout.train_job(kimg="{kimg}")


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
        layout.log("train", "studies", "{study}", "{point}", STUDY_JOB),
    benchmark:
        layout.benchmark("train", "studies", "{study}", "{point}", STUDY_JOB)


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
