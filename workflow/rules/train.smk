# Stage 2: training, per dataset x model x training seed -> results/runs/{dataset}/{model}/seed{seed}/.
# With train.segments (the schema's default) one job per interval between consecutive kimg
# checkpoints: the job of checkpoint K resumes from the state the job before it left and
# stops at K, so a job's walltime is one interval and K is evaluated as soon as it exists.
# Otherwise one job per run writes every snapshot. The snapshots are the declared outputs;
# the resume state (state/) lives beside them undeclared, because Snakemake deletes declared
# outputs before re-running a job. Re-running after an interruption (Ctrl-C, scancel,
# walltime) resumes from that state.

if SEGMENTS:
    TRAIN_OUTPUT = layout.snapshot()
    TRAIN_JOB = layout.train_job(kimg="{kimg}")
else:
    TRAIN_OUTPUT = snapshot_files()
    TRAIN_JOB = layout.train_job()


rule train:
    input:
        manifest=layout.manifest(),
        images=layout.images(),
        previous=previous_snapshot if SEGMENTS else [],
    output:
        TRAIN_OUTPUT,
    params:
        cfg=train_config,
        data=subpath(input.manifest, parent=True),
        out=layout.run_dir(),
        launcher=torch_launcher,
    log:
        layout.log("train", TRAIN_JOB),
    benchmark:
        layout.benchmark("train", TRAIN_JOB)
    # One CPU thread per training job, so that on a CPU the runs train side by side: on
    # the 2-core machine of the README two 1-thread jobs finish 1.6x more kimg per second in
    # all than one 2-thread job (small convolutions do not scale across threads). On a GPU
    # the process needs little CPU (the data-loader workers are separate processes); the
    # SLURM profile raises it (set-threads), and `--set-threads train=N` does so locally.
    threads: 1
    # Training is the long pole: start every training job before any evaluation.
    priority: 10
    resources:
        gpu=1,
    shell:
        "{params.launcher} train --config-json {params.cfg:q} --dataset {wildcards.dataset}"
        " --model {wildcards.model} --seed {wildcards.seed} --data {params.data:q} --out {params.out:q}"
        " > {log} 2>&1"


rule bench_throughput:
    # The attention-cost claim's measurement: every model's training step timed alone on one
    # device, the models interleaved in one process (A, B, C, A, B, C, ...), so that a change
    # in the machine's load falls on all of them alike. Never read from the training jobs,
    # which share the machine with each other. Two threads: on a small machine it then runs
    # with no other job beside it.
    input:
        manifest=layout.manifest(),
        images=layout.images(),
    output:
        layout.throughput(),
    params:
        cfg=throughput_config,
        data=subpath(input.manifest, parent=True),
    log:
        layout.log("bench_throughput", "{dataset}"),
    threads: 2
    resources:
        gpu=1,
    shell:
        "ganrepro bench throughput --config-json {params.cfg:q} --dataset {wildcards.dataset}"
        " --data {params.data:q} --out {output:q} > {log} 2>&1"
