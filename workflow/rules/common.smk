# Validation, helpers and target lists shared by every stage.
import json
import re
import shutil
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake.utils import validate

from ganrepro import config as ganrepro_config
from ganrepro.errors import ConfigError

# The package's check first: one sentence naming the key and what is allowed. Then
# Snakemake's own validate() against the same schema, which also fills in defaults.
try:
    ganrepro_config.resolve(config, origin=" + ".join(map(str, workflow.configfiles)) or None)
except ConfigError as err:
    raise WorkflowError(f"invalid configuration: {err}") from None
validate(config, str(ganrepro_config.schema_path()))

DATASETS = list(config["datasets"])
MODELS = list(config["models"])
KIMGS = list(config["kimg"])
LAST_KIMG = KIMGS[-1]


wildcard_constraints:
    dataset="|".join(map(re.escape, DATASETS)),
    model="|".join(map(re.escape, MODELS)),
    kimg=r"\d{6}",


def repo_file(path):
    """A file of this repository (the published numbers, the LaTeX template), found from
    the Snakefile, so that `snakemake -d elsewhere` works too."""
    return str(Path(workflow.basedir) / path)


def dataset_targets():
    return expand("results/datasets/{dataset}/dataset.json", dataset=DATASETS)


def dataset_spec(wildcards):
    """The resolved config entry of one dataset, as JSON for `ganrepro data prepare --spec`."""
    return json.dumps(config["datasets"][wildcards.dataset], sort_keys=True)


def config_json(wildcards=None):
    """The whole resolved config as JSON, so a job sees exactly what this run validated
    (including --configfile and --config overrides)."""
    return json.dumps(config, sort_keys=True)


def snapshot_files(dataset="{dataset}", model="{model}"):
    return [f"results/runs/{dataset}/{model}/snapshot-{k:06d}.pt" for k in KIMGS]


def metrics_files():
    """Every metrics JSON of the run: dataset x model x kimg."""
    return [f"results/metrics/{d}/{m}/kimg{k:06d}.json" for d in DATASETS for m in MODELS for k in KIMGS]


def stats_file(wildcards):
    return f"results/stats/{wildcards.dataset}/{config['metrics']['fid_mode']}-real{config['metrics']['num_real']}.npz"


def num_gen(wildcards):
    """num_gen at every checkpoint; the last one also measures final_num_gen (one pass)."""
    m = config["metrics"]
    counts = [m["num_gen"]]
    if int(wildcards.kimg) == LAST_KIMG and m["final_num_gen"] and m["final_num_gen"] != m["num_gen"]:
        counts.append(m["final_num_gen"])
    return ",".join(map(str, counts))


def repeats(wildcards):
    return config["metrics"]["repeats"] if int(wildcards.kimg) == LAST_KIMG else 1


def torch_launcher(wildcards, resources):
    """Several GPUs in one job (resources gpu=N > 1) run training under torchrun."""
    n = int(resources.get("gpu", 0) or 0)
    return f"torchrun --standalone --nproc-per-node {n} -m ganrepro.cli" if n > 1 else "ganrepro"


# ---------------------------------------------------------------- report stage
from ganrepro.report import CLAIMS_JSON, TABLES, TABLES_INDEX, figure_files

HAVE_LATEXMK = shutil.which("latexmk") is not None


def report_inputs():
    """The inputs of the tables and figures: metrics, snapshots, manifests, benchmarks."""
    return {
        "metrics": metrics_files(),
        "snapshots": [s for d in DATASETS for m in MODELS for s in snapshot_files(d, m)],
        "manifests": dataset_targets(),
        "train_benchmarks": expand("results/benchmarks/train/{dataset}/{model}.tsv", dataset=DATASETS, model=MODELS),
        "evaluate_benchmarks": [f"results/benchmarks/evaluate/{d}/{m}/kimg{k:06d}.tsv"
                                for d in DATASETS for m in MODELS for k in KIMGS],
    }


def report_targets():
    """The report's files: the PDF too when latexmk is installed."""
    return ["results/report/report.tex"] + (["results/report/report.pdf"] if HAVE_LATEXMK else [])


