# ganrepro: reproduce "Generative Adversarial Transformers" (Hudson & Zitnick, 2021).
#   snakemake --cores 1 report                          embedded default (config/config.yaml)
#   snakemake --cores 1 --configfile config/paper.yaml  the paper / replication setting
#   snakemake --profile workflow/profiles/slurm ...     the same DAG on a SLURM cluster
from snakemake.utils import min_version

min_version("9.0")


# A --configfile replaces the embedded default instead of being merged into it
# (merging would add the default's datasets to every other config).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


# Snakemake's own HTML report (`snakemake --report results/report.html`): this text, then
# the outputs the rules mark with report(...).
report: "report/captions/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/metrics.smk"
include: "workflow/rules/studies.smk"
include: "workflow/rules/pretrained.smk"
include: "workflow/rules/report.smk"


# Default target: the reproducibility report, results/report/report.tex and, where a TeX
# engine (latexmk) is installed, report.pdf. Declared here, after the includes: a
# default_target inside an included file does not survive a --configfile run.
rule all:
    input:
        rules.report.input,
    default_target: True
    localrule: True
