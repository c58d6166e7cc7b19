# Stage 3: Inception statistics of the reals (once per dataset, cached) and one
# evaluation per dataset x model x kimg -> results/metrics/{dataset}/{model}/kimg{kimg}.json.


rule real_stats:
    input:
        manifest="results/datasets/{dataset}/dataset.json",
        images="results/datasets/{dataset}/images.npy",
    output:
        "results/stats/{dataset}/{mode}-real{num_real}.npz",
    params:
        data=subpath(input.manifest, parent=True),
        m=config["metrics"],
    log:
        "results/logs/real_stats/{dataset}/{mode}-real{num_real}.log",
    # One thread, like train: on a CPU the Inception passes then fill a core that a finished
    # training job left idle while the others still train (the SLURM profile raises it).
    threads: 1
    resources:
        gpu=1,
    conda:
        "../../environment.yml"
    shell:
        "ganrepro stats --data {params.data:q} --num-real {wildcards.num_real} --fid-mode {wildcards.mode}"
        " --batch-size {params.m[batch_size]} --weights-dir {params.m[weights_dir]:q}"
        " --device {params.m[device]} --out {output:q} > {log} 2>&1"


rule evaluate:
    input:
        snapshot="results/runs/{dataset}/{model}/snapshot-{kimg}.pt",
        stats=stats_file,
        manifest="results/datasets/{dataset}/dataset.json",
    output:
        "results/metrics/{dataset}/{model}/kimg{kimg}.json",
    params:
        data=subpath(input.manifest, parent=True),
        m=config["metrics"],
        names=",".join(config["metrics"]["names"]),
        num_gen=num_gen,
        repeats=repeats,
        seed=config["seed"],
    log:
        "results/logs/evaluate/{dataset}/{model}/kimg{kimg}.log",
    benchmark:
        "results/benchmarks/evaluate/{dataset}/{model}/kimg{kimg}.tsv"
    threads: 1  # as real_stats
    resources:
        gpu=1,
    conda:
        "../../environment.yml"
    shell:
        "ganrepro evaluate --snapshot {input.snapshot:q} --dataset {wildcards.dataset} --data {params.data:q}"
        " --stats {input.stats:q} --num-real {params.m[num_real]} --metrics {params.names} --num-gen {params.num_gen}"
        " --seed {params.seed} --repeats {params.repeats} --fid-mode {params.m[fid_mode]}"
        " --batch-size {params.m[batch_size]} --weights-dir {params.m[weights_dir]:q}"
        " --device {params.m[device]} --out {output:q} > {log} 2>&1"
