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
    threads: 2
    resources:
        gpu=1,
    conda:
        "../../environment.yml"
    shell:
        "{params.launcher} train --config-json {params.cfg:q} --dataset {wildcards.dataset}"
        " --model {wildcards.model} --data {params.data:q} --out {params.out:q} > {log} 2>&1"
