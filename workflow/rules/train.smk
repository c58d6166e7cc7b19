# Stage 2: one training job per dataset x model -> results/runs/{dataset}/{model}/.
# The snapshots are the declared outputs; the resume state (state/) lives beside them
# undeclared, because Snakemake deletes declared outputs before re-running a job.
# Re-running after an interruption (Ctrl-C, scancel, walltime) resumes from that state.


rule train:
    input:
        manifest="results/datasets/{dataset}/dataset.json",
        images="results/datasets/{dataset}/images.npy",
    output:
        snapshot_files(),
    params:
        cfg=config_json,
        data=subpath(input.manifest, parent=True),
        out="results/runs/{dataset}/{model}",
        launcher=torch_launcher,
    log:
        "results/logs/train/{dataset}/{model}.log",
    benchmark:
        "results/benchmarks/train/{dataset}/{model}.tsv"
    # One CPU thread per training job, so that on a CPU the models train side by side: on
    # the 2-core machine of the README two 1-thread jobs finish 1.6x more kimg per second in
    # all than one 2-thread job (small convolutions do not scale across threads). On a GPU
    # the process needs little CPU (the data-loader workers are separate processes); the
    # SLURM profile raises it (set-threads), and `--set-threads train=N` does so locally.
    threads: 1
    # Training is the long pole: start every training job before any evaluation.
    priority: 10
    resources:
        gpu=1,
    conda:
        "../../environment.yml"
    shell:
        "{params.launcher} train --config-json {params.cfg:q} --dataset {wildcards.dataset}"
        " --model {wildcards.model} --data {params.data:q} --out {params.out:q} > {log} 2>&1"
