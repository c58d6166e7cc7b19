# Stage 3: Inception statistics of the reals (once per dataset, cached) and one
# evaluation per dataset x model x training seed x kimg ->
# results/metrics/{dataset}/{model}/seed{seed}/kimg{kimg}.json.


rule real_stats:
    input:
        manifest="results/datasets/{dataset}/dataset.json",
        images="results/datasets/{dataset}/images.npy",
    output:
        "results/stats/{dataset}/{mode}-real{num_real}.npz",
    params:
        data=subpath(input.manifest, parent=True),
        batch_size=config["metrics"]["batch_size"],
        weights_dir=config["metrics"]["weights_dir"],
        device=config["metrics"]["device"],
        extractor=config["metrics"]["extractor"],
    log:
        "results/logs/real_stats/{dataset}/{mode}-real{num_real}.log",
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
    # One snapshot of one training run. Its params are the metrics settings it uses and no
    # more, so editing metrics.repeats reruns only the last checkpoints' evaluations.
    input:
        snapshot="results/runs/{dataset}/{model}/seed{seed}/snapshot-{kimg}.pt",
        stats=stats_file,
        manifest="results/datasets/{dataset}/dataset.json",
    output:
        "results/metrics/{dataset}/{model}/seed{seed}/kimg{kimg}.json",
    params:
        data=subpath(input.manifest, parent=True),
        names=",".join(config["metrics"]["names"]),
        num_real=config["metrics"]["num_real"],
        num_gen=num_gen,
        repeats=repeats,
        seed=config["metrics"]["seed"],
        fid_mode=config["metrics"]["fid_mode"],
        batch_size=config["metrics"]["batch_size"],
        weights_dir=config["metrics"]["weights_dir"],
        device=config["metrics"]["device"],
        extractor=config["metrics"]["extractor"],
    log:
        "results/logs/evaluate/{dataset}/{model}/seed{seed}/kimg{kimg}.log",
    benchmark:
        "results/benchmarks/evaluate/{dataset}/{model}/seed{seed}/kimg{kimg}.tsv"
    threads: 1  # as real_stats
    resources:
        gpu=1,
    shell:
        "ganrepro evaluate --snapshot {input.snapshot:q} --dataset {wildcards.dataset} --data {params.data:q}"
        " --stats {input.stats:q} --num-real {params.num_real} --metrics {params.names} --num-gen {params.num_gen}"
        " --seed {params.seed} --repeats {params.repeats} --fid-mode {params.fid_mode}"
        " --batch-size {params.batch_size} --weights-dir {params.weights_dir:q}"
        " --device {params.device} --extractor {params.extractor} --out {output:q} > {log} 2>&1"
