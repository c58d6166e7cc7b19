# Stage 1: datasets -> results/datasets/{dataset}/ (dataset.json + images.npy).


rule prepare_dataset:
    output:
        manifest=layout.manifest(),
        images=layout.images(),
    params:
        spec=dataset_spec,
        cache_dir=config["cache_dir"],
        out=subpath(output.manifest, parent=True),
    log:
        layout.log("prepare_dataset", "{dataset}"),
    threads: 2
    shell:
        "ganrepro data prepare {wildcards.dataset} --spec {params.spec:q}"
        " --cache-dir {params.cache_dir:q} --workers {threads} --out {params.out:q} > {log} 2>&1"


rule datasets:
    # A named target for the dataset stage alone: `snakemake datasets`.
    input:
        dataset_targets(),
    localrule: True
