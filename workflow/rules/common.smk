# Validation, helpers and target lists shared by every stage.
import json
import re
import shutil
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake.utils import validate

from ganrepro import layout, protocol
from ganrepro.errors import ConfigError
from ganrepro.settings import config as ganrepro_config
from ganrepro.settings import presets, studies
from ganrepro.settings.schema import schema_path

# The package's check first: one sentence naming the key and what is allowed. Then
# Snakemake's own validate() against the same schema, which also fills in defaults.
try:
    ganrepro_config.resolve(config, origin=" + ".join(map(str, workflow.configfiles)) or None)
except ConfigError as err:
    raise WorkflowError(f"invalid configuration: {err}") from None
validate(config, str(schema_path()))

DATASETS = list(config["datasets"])
PRETRAINED = dict(config["pretrained"])
MODELS = list(config["models"])
SEEDS = [int(s) for s in config["seeds"]]
KIMGS = list(config["kimg"])
LAST_KIMG = KIMGS[-1]
# The study points (config `studies:`), by (study, point name): settings.studies.
POINTS = {(p.study, p.name): p for p in studies.expand(config)}


wildcard_constraints:
    dataset="|".join(map(re.escape, DATASETS)),
    model="|".join(map(re.escape, MODELS)),
    seed=r"\d+",
    kimg=r"\d{6}",
    name="|".join(map(re.escape, PRETRAINED)) or "(?!)",
    mode="|".join(protocol.FID_MODES),
    study="|".join(map(re.escape, {p.study for p in POINTS.values()})) or "(?!)",
    point="|".join(map(re.escape, {p.name for p in POINTS.values()})) or "(?!)",
    fraction=r"[0-9.e-]+",


def repo_file(path):
    """A file of this repository (the published numbers, the LaTeX template), found from
    the Snakefile, so that `snakemake -d elsewhere` works too."""
    return str(Path(workflow.basedir) / path)


def dataset_targets():
    return [layout.manifest(d) for d in DATASETS]


def dataset_spec(wildcards):
    """The resolved config entry of one dataset, as JSON for `ganrepro data prepare --spec`."""
    return json.dumps(presets.data_spec(config["datasets"][wildcards.dataset]), sort_keys=True)


# Each job gets the part of the config it uses and no more, as JSON: Snakemake reruns a job
# when its params change, so an edit reruns exactly the jobs it concerns (a metrics key no
# training job, a new model no other model's jobs, one dataset's preset or overrides no
# other dataset's jobs). The package fills in the defaults again and applies the dataset's
# preset and overrides over the top level (ganrepro.settings.presets).
# A study point's jobs pass their point's config (settings.studies) as `cfg`.
def _job_config(dataset, models, cfg=None, **sections):
    cfg = config if cfg is None else cfg
    entry = cfg["datasets"][dataset]
    own = {m: entry["hparams"][m] for m in models if m in entry.get("hparams", {})}
    job = {"datasets": {dataset: {**entry, "hparams": own}}, "models": list(models),
           "hparams": {m: cfg["hparams"][m] for m in models if m in cfg["hparams"]},
           "train": cfg["train"]}
    return json.dumps({**job, **sections}, sort_keys=True)


SEGMENTS = bool(config["train"]["segments"])


def train_config(wildcards):
    """One training job: its dataset, its model's hyper-parameters, the recipe, its seed and
    the checkpoints up to the one it ends at (a segment job stops there; the next one resumes
    from the state it left, so adding a later checkpoint leaves the earlier jobs alone)."""
    kimgs = [k for k in KIMGS if k <= int(wildcards.kimg)] if SEGMENTS else KIMGS
    return _job_config(wildcards.dataset, [wildcards.model], kimg=kimgs,
                       seeds=[int(wildcards.seed)])


def previous_snapshot(wildcards):
    """A segment job starts from the state the job of the checkpoint before it left."""
    earlier = [k for k in KIMGS if k < int(wildcards.kimg)]
    return [layout.snapshot(wildcards.dataset, wildcards.model, wildcards.seed, earlier[-1])] if earlier else []


def throughput_config(wildcards):
    """The throughput benchmark of one dataset: every model's hyper-parameters and the recipe."""
    return _job_config(wildcards.dataset, MODELS)


def config_json(wildcards=None):
    """The whole resolved config as JSON, for the report stage (which prints all of it)."""
    return json.dumps(config, sort_keys=True)


def snapshot_files(dataset="{dataset}", model="{model}", seed="{seed}"):
    return [layout.snapshot(dataset, model, seed, k) for k in KIMGS]


def runs():
    """Every training run: (dataset, model, seed)."""
    return [(d, m, s) for d in DATASETS for m in MODELS for s in SEEDS]


def pretrained_metrics():
    """Every metrics JSON of the released checkpoints: one per FID mode this machine can
    measure in (NVIDIA's Inception in metrics.weights_dir adds legacy_tensorflow)."""
    modes = protocol.available_modes(config["metrics"]["weights_dir"])
    return [layout.pretrained_metrics(name, mode) for name in PRETRAINED for mode in modes]


# ---------------------------------------------------------------- released checkpoints
def pretrained_file(wildcards):
    """The checkpoint: downloaded into cache_dir, or the local path the config names."""
    spec = PRETRAINED[wildcards.name]
    if "path" in spec:
        return spec["path"]
    return layout.download(config["cache_dir"], wildcards.name)


def pretrained_stats(wildcards):
    dataset = PRETRAINED[wildcards.name]["dataset"]
    return layout.stats(dataset, wildcards.mode, config["metrics"]["num_real"])


def pretrained_manifest(wildcards):
    return layout.manifest(PRETRAINED[wildcards.name]["dataset"])


def metrics_files():
    """Every metrics JSON of the run: dataset x model x seed x kimg."""
    return [layout.metrics(d, m, s, k) for d, m, s in runs() for k in KIMGS]


def stats_file(wildcards):
    m = config["metrics"]
    return layout.stats(wildcards.dataset, m["fid_mode"], m["num_real"])


# An evaluation job's config: its dataset as prepared (what its data depend on), and the
# metrics section as its snapshot's plan reads it (protocol.job_metrics), so that editing
# metrics.repeats, say, reruns the last checkpoints' evaluations only.
def _evaluate_config(dataset, metrics, **sections):
    spec = presets.data_spec(config["datasets"][dataset])
    return json.dumps({"datasets": {dataset: spec}, "metrics": metrics, **sections}, sort_keys=True)


def evaluate_config(wildcards):
    """One checkpoint's evaluation, with kimg [its kimg]: `ganrepro evaluate --kimg K` then
    plans it as protocol.plan(the config's metrics, its stage, its dataset's source) does
    (the last checkpoint of a `shapes` run is also scored for disentanglement)."""
    kimg = int(wildcards.kimg)
    metrics = protocol.job_metrics(config["metrics"], protocol.stage_of(kimg, LAST_KIMG),
                                   config["datasets"][wildcards.dataset]["source"])
    return _evaluate_config(wildcards.dataset, metrics, kimg=[kimg])


def pretrained_config(wildcards):
    """One released checkpoint's evaluation in one FID mode."""
    metrics = protocol.job_metrics(config["metrics"], protocol.RELEASED)
    return _evaluate_config(PRETRAINED[wildcards.name]["dataset"], {**metrics, "fid_mode": wildcards.mode})


# ---------------------------------------------------------------- studies (workflow/rules/studies.smk)
def study_metrics():
    """Every metrics JSON of the studies: one per point x model x training seed, at the
    point's last kimg, under the point's own results tree (layout.study_root)."""
    return [layout.metrics(p.dataset, m, s, p.kimg[-1], root=layout.study_root(p.study, p.name))
            for p in POINTS.values() for m in p.models for s in p.seeds]


def point_of(wildcards):
    return POINTS[(wildcards.study, wildcards.point)]


def study_data(wildcards):
    """The prepared dataset a point's runs train on: a subset, or the dataset itself."""
    p = point_of(wildcards)
    if p.subset:
        fraction = studies.fraction_label(p.value)
        return {"manifest": layout.subset_manifest(p.dataset, fraction),
                "images": layout.subset_images(p.dataset, fraction)}
    return {"manifest": layout.manifest(p.dataset), "images": layout.images(p.dataset)}


def study_previous_snapshot(wildcards):
    """With train.segments, a point's job of checkpoint K resumes from the one before it."""
    p = point_of(wildcards)
    earlier = [k for k in p.kimg if k < int(wildcards.kimg)] if SEGMENTS else []
    root = layout.study_root(wildcards.study, wildcards.point)
    return [layout.snapshot(wildcards.dataset, wildcards.model, wildcards.seed, earlier[-1], root=root)] if earlier else []


def study_train_config(wildcards):
    """As train_config, from the point's config: the job of checkpoint K trains to K (the
    point's last kimg, or with train.segments one interval)."""
    p = point_of(wildcards)
    kimgs = [k for k in p.kimg if k <= int(wildcards.kimg)]
    return _job_config(wildcards.dataset, [wildcards.model], cfg=p.config, kimg=kimgs, seeds=[int(wildcards.seed)])


def study_evaluate_config(wildcards):
    """As evaluate_config, planned against the point's last kimg."""
    p = point_of(wildcards)
    metrics = protocol.job_metrics(config["metrics"], protocol.stage_of(int(wildcards.kimg), p.kimg[-1]))
    return _evaluate_config(wildcards.dataset, metrics, kimg=[int(wildcards.kimg)])


def torch_launcher(wildcards, resources):
    """Several GPUs in one job (resources gpu=N > 1) run training under torchrun."""
    n = int(resources.get("gpu", 0) or 0)
    return f"torchrun --standalone --nproc-per-node {n} -m ganrepro.cli" if n > 1 else "ganrepro"


# ---------------------------------------------------------------- report stage
from ganrepro.report import CLAIMS_JSON, TABLES_INDEX, figure_files, table_names

STUDIES = list(config["studies"])
TABLE_NAMES = table_names(STUDIES)

HAVE_LATEXMK = shutil.which("latexmk") is not None


def report_inputs():
    """The inputs of the tables and figures: metrics, snapshots (for the run files beside
    them; the report never loads a snapshot), manifests, benchmarks, throughput."""
    return {
        "metrics": metrics_files(),
        "snapshots": [s for d, m, seed in runs() for s in snapshot_files(d, m, seed)],
        "manifests": dataset_targets(),
        "train_benchmarks": [b for d, m, s in runs() for b in layout.train_benchmarks(d, m, s, KIMGS, SEGMENTS)],
        "evaluate_benchmarks": [layout.evaluate_benchmark(d, m, s, k) for d, m, s in runs() for k in KIMGS],
        "throughput": [layout.throughput(d) for d in DATASETS],
        "study_metrics": study_metrics(),
    }


def caption(name):
    """A caption of Snakemake's HTML report (report/captions/NAME.rst)."""
    return repo_file(f"report/captions/{name}.rst")


def figure_output(name):
    """A figure file as an output of the figures rule; the PNGs go into the HTML report."""
    path = layout.figure(name)
    kind = name.split("_", 1)[0]
    if name.endswith(".png"):
        return report(path, caption=caption(kind), category="Figures", subcategory=kind)
    return path


def report_targets():
    """The report's files: the PDF too when latexmk is installed."""
    return [layout.report_tex()] + ([layout.report_pdf()] if HAVE_LATEXMK else [])


