# ganrepro: reproduce "Generative Adversarial Transformers" (Hudson & Zitnick, 2021).
#   snakemake --cores 1                               embedded default (config/config.yaml)
#   snakemake --cores 1 --configfile config/paper.yaml  the paper / replication setting
from snakemake.utils import min_version

min_version("9.0")


# A --configfile replaces the embedded default instead of being merged into it
# (merging would add the default's datasets to every other config).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"


# Default target: the furthest stage that exists so far (the prepared datasets).
rule all:
    input:
        dataset_targets(),
    default_target: True
