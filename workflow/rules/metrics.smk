# Stage 3: Inception statistics of the reals (once per dataset, cached) and one
# evaluation per dataset x model x training seed x kimg ->
# results/metrics/{dataset}/{model}/seed{seed}/kimg{kimg}.json.


rule real_stats:
    input:
        manifest=layout.manifest(),
        images=layout.images(),
    output:
        layout.stats(),
    params:
        data=subpath(input.manifest, parent=True),
        batch_size=config["metrics"]["batch_size"],
        weights_dir=config["metrics"]["weights_dir"],
        device=config["metrics"]["device"],
        extractor=config["metrics"]["extractor"],
    log:
        layout.log("real_stats", "{dataset}", "{mode}-real{num_real}"),
    # One thread, like train: on a CPU the Inception passes then fill a core that a finished
    # training job left idle while the others still train (the SLURM profile raises it).
    threads: 1
    resources:
        gpu=1,
    shell:
        "ganrepro stats --data {params.data:q} --num-real {wildcards.num_real} --fid-mode {wildcards.mode}"
        " --batch-size {params.batch_size} --weights-dir {params.weights_dir:q}"
        " --device {params.device} --extractor {params.extractor} --out {output:q} > {log} 2>&1"


rule evaluate:
    # One snapshot of one training run, measured as protocol.plan says. Its params are the
    # metrics settings its plan uses and no more (evaluate_config), so editing
    # metrics.repeats reruns only the last checkpoints' evaluations.
    input:
        snapshot=layout.snapshot(),
        stats=stats_file,
        manifest=layout.manifest(),
    output:
        layout.metrics(),
    params:
        data=subpath(input.manifest, parent=True),
        cfg=evaluate_config,
    log:
        layout.log("evaluate", layout.evaluate_job()),
    benchmark:
        layout.evaluate_benchmark()
    threads: 1  # as real_stats
    resources:
        gpu=1,
    shell:
        "ganrepro evaluate --config-json {params.cfg:q} --kimg {wildcards.kimg} --snapshot {input.snapshot:q}"
        " --dataset {wildcards.dataset} --data {params.data:q} --stats {input.stats:q} --out {output:q}"
        " > {log} 2>&1"
