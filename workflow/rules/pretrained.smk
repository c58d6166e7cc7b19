# The released checkpoints (config `pretrained:`), a branch of its own: `snakemake pretrained`
# runs it alone, and the report includes it when any checkpoint is listed.
#   download (resumable, verified) -> import (restricted unpickler: no code from the file
#   runs) -> results/pretrained/{name}/snapshot.pt -> evaluate in each FID mode this machine
#   has (clean; legacy_tensorflow too where NVIDIA's Inception is in metrics.weights_dir,
#   the protocol of the official FID-50k table) -> results/pretrained/{name}/metrics-{mode}.json


rule download_checkpoint:
    output:
        layout.download(config["cache_dir"]),
    params:
        url=lambda w: PRETRAINED[w.name]["url"],
        check=lambda w: " ".join(
            ([f"--sha256 {PRETRAINED[w.name]['sha256']}"] if PRETRAINED[w.name]["sha256"] else [])
            + ([f"--size {PRETRAINED[w.name]['size']}"] if PRETRAINED[w.name]["size"] else [])),
    log:
        layout.log("pretrained", "download", "{name}"),
    # A finished download is kept even if a later edit of the config changes its params.
    retries: 2
    shell:
        "ganrepro download {params.url:q} --out {output:q} {params.check} > {log} 2>&1"


rule import_checkpoint:
    input:
        pretrained_file,
    output:
        layout.pretrained_snapshot(),
    params:
        network=lambda w: PRETRAINED[w.name]["network"],
        expect=lambda w: " ".join(
            ([f"--expect-sha256 {PRETRAINED[w.name]['sha256']}"] if PRETRAINED[w.name]["sha256"] else [])
            + ([f"--expect-model {PRETRAINED[w.name]['model']}"] if PRETRAINED[w.name]["model"] else [])),
    log:
        layout.log("pretrained", "import", "{name}"),
    shell:
        "ganrepro import-checkpoint {input:q} --out {output:q} --network {params.network} {params.expect}"
        " > {log} 2>&1"


rule evaluate_pretrained:
    input:
        snapshot=layout.pretrained_snapshot(),
        stats=pretrained_stats,
        manifest=pretrained_manifest,
    output:
        layout.pretrained_metrics(),
    params:
        dataset=lambda w: PRETRAINED[w.name]["dataset"],
        data=lambda w, input: str(Path(input.manifest).parent),
        trunc=lambda w: PRETRAINED[w.name]["truncation"],
        cfg=pretrained_config,
    log:
        layout.log("pretrained", "evaluate", "{name}", "{mode}"),
    benchmark:
        layout.pretrained_benchmark()
    threads: 1  # as real_stats
    resources:
        gpu=1,
    shell:
        "ganrepro evaluate --config-json {params.cfg:q} --snapshot {input.snapshot:q} --dataset {params.dataset}"
        " --data {params.data:q} --stats {input.stats:q} --trunc {params.trunc} --out {output:q} > {log} 2>&1"


rule pretrained:
    # A named target for this branch alone: `snakemake pretrained`.
    input:
        pretrained_metrics(),
    localrule: True
