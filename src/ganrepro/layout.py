"""Where the pipeline's files live under results/: the one place their paths are written.

Every function takes plain values and returns a path string, so the same function serves
the Snakemake rules (called with their defaults, the patterns' wildcards such as
"{dataset}") and the package (called with real values: the report's reader, the CLI's
defaults). A kimg given as an int is written with six digits (10 -> "000010"), as the
rules' {kimg} wildcard matches it; any other value (a wildcard) is written as it is.

    results/
      datasets/{dataset}/dataset.json, images.npy       prepare_dataset
      subsets/{dataset}/fraction-{fraction}/            subset_dataset (a study's nested subsets)
      stats/{dataset}/{mode}-real{num_real}.npz         real_stats (Inception statistics)
      runs/{dataset}/{model}/seed{seed}/                train (snapshot-{kimg}.pt, stats.jsonl, ...)
      metrics/{dataset}/{model}/seed{seed}/kimg{kimg}.json   evaluate
      throughput/{dataset}.json                         bench_throughput
      pretrained/{name}/snapshot.pt, metrics-{mode}.json     released checkpoints
      benchmarks/{stage}/..., logs/{stage}/...          Snakemake's timings and the jobs' logs
      studies/{study}/{point}/runs/..., metrics/...     a study point: the runs/ and metrics/ trees above
      tables/, figures/, report/                        the report stage
"""

from __future__ import annotations

ROOT = "results"


def _kimg(kimg: int | str) -> str:
    return f"{kimg:06d}" if isinstance(kimg, int) else str(kimg)


def _num_real(num_real: int | str | None) -> str:
    return "all" if num_real is None else str(num_real)


# ---------------------------------------------------------------- datasets and real statistics
def dataset_dir(dataset: str = "{dataset}", root: str = ROOT) -> str:
    """A prepared dataset (the format of ganrepro.data.store)."""
    return f"{root}/datasets/{dataset}"


def manifest(dataset: str = "{dataset}", root: str = ROOT) -> str:
    return f"{dataset_dir(dataset, root)}/dataset.json"


def images(dataset: str = "{dataset}", root: str = ROOT) -> str:
    return f"{dataset_dir(dataset, root)}/images.npy"


def stats(dataset: str = "{dataset}", mode: str = "{mode}", num_real: int | str | None = "{num_real}",
          root: str = ROOT) -> str:
    """The cached Inception statistics of a dataset's reals (num_real None = all of them)."""
    return f"{root}/stats/{dataset}/{mode}-real{_num_real(num_real)}.npz"


def subset_dir(dataset: str = "{dataset}", fraction: str = "{fraction}", root: str = ROOT) -> str:
    """A nested subset of a prepared dataset, itself a prepared dataset (ganrepro.data.subsets);
    `fraction` as settings.studies.fraction_label writes it."""
    return f"{root}/subsets/{dataset}/fraction-{fraction}"


def subset_manifest(dataset: str = "{dataset}", fraction: str = "{fraction}", root: str = ROOT) -> str:
    return f"{subset_dir(dataset, fraction, root)}/dataset.json"


def subset_images(dataset: str = "{dataset}", fraction: str = "{fraction}", root: str = ROOT) -> str:
    return f"{subset_dir(dataset, fraction, root)}/images.npy"


# ---------------------------------------------------------------- studies
def study_root(study: str = "{study}", point: str = "{point}", root: str = ROOT) -> str:
    """The results tree of one study point (settings.studies.Point.name): its runs and
    metrics lie below it as they lie below results/ (run_dir, snapshot, metrics, ... with
    root=study_root(...))."""
    return f"{root}/studies/{study}/{point}"


# ---------------------------------------------------------------- training runs
def run_dir(dataset: str = "{dataset}", model: str = "{model}", seed: int | str = "{seed}",
            root: str = ROOT) -> str:
    """One training run's folder (its files: ganrepro.training.run_files)."""
    return f"{root}/runs/{dataset}/{model}/seed{seed}"


def snapshot(dataset: str = "{dataset}", model: str = "{model}", seed: int | str = "{seed}",
             kimg: int | str = "{kimg}", root: str = ROOT) -> str:
    return f"{run_dir(dataset, model, seed, root)}/snapshot-{_kimg(kimg)}.pt"


def run_file(dataset: str, model: str, seed: int | str, name: str, root: str = ROOT) -> str:
    """A file the training writes beside the snapshots (stats.jsonl, training_options.json)."""
    return f"{run_dir(dataset, model, seed, root)}/{name}"


def train_job(dataset: str = "{dataset}", model: str = "{model}", seed: int | str = "{seed}",
              kimg: int | str | None = None) -> str:
    """A training job's name in its log and benchmark paths: one job per checkpoint
    interval with train.segments (kimg given), else one per run."""
    job = f"{dataset}/{model}/seed{seed}"
    return job if kimg is None else f"{job}/kimg{_kimg(kimg)}"


def train_benchmark(dataset: str = "{dataset}", model: str = "{model}", seed: int | str = "{seed}",
                    kimg: int | str | None = None, root: str = ROOT) -> str:
    return benchmark("train", train_job(dataset, model, seed, kimg), root=root)


def train_benchmarks(dataset: str, model: str, seed: int | str, kimgs: list[int], segments: bool,
                     root: str = ROOT) -> list[str]:
    """Every benchmark file of one run's training jobs."""
    if segments:
        return [train_benchmark(dataset, model, seed, k, root) for k in kimgs]
    return [train_benchmark(dataset, model, seed, None, root)]


# ---------------------------------------------------------------- evaluation
def evaluate_job(dataset: str = "{dataset}", model: str = "{model}", seed: int | str | None = "{seed}",
                 kimg: int | str = "{kimg}") -> str:
    """An evaluation's name in its paths; seed None: a snapshot from outside a run folder."""
    return f"{dataset}/{model}/{'' if seed is None else f'seed{seed}/'}kimg{_kimg(kimg)}"


def metrics(dataset: str = "{dataset}", model: str = "{model}", seed: int | str | None = "{seed}",
            kimg: int | str = "{kimg}", root: str = ROOT) -> str:
    """One snapshot's metrics JSON (seed None: `ganrepro evaluate` of a snapshot that is
    not in a run folder)."""
    return f"{root}/metrics/{evaluate_job(dataset, model, seed, kimg)}.json"


def evaluate_benchmark(dataset: str = "{dataset}", model: str = "{model}", seed: int | str = "{seed}",
                       kimg: int | str = "{kimg}", root: str = ROOT) -> str:
    return benchmark("evaluate", evaluate_job(dataset, model, seed, kimg), root=root)


def throughput(dataset: str = "{dataset}", root: str = ROOT) -> str:
    """The attention-cost benchmark of one dataset (every model's training step)."""
    return f"{root}/throughput/{dataset}.json"


# ---------------------------------------------------------------- released checkpoints
def download(cache_dir: str, name: str = "{name}") -> str:
    """A downloaded released checkpoint, in the config's cache_dir (outside results/)."""
    return f"{cache_dir}/pretrained/{name}.pkl"


def pretrained_dir(name: str = "{name}", root: str = ROOT) -> str:
    return f"{root}/pretrained/{name}"


def pretrained_snapshot(name: str = "{name}", root: str = ROOT) -> str:
    return f"{pretrained_dir(name, root)}/snapshot.pt"


def pretrained_metrics(name: str = "{name}", mode: str = "{mode}", root: str = ROOT) -> str:
    """A released checkpoint's metrics JSON in one FID mode."""
    return f"{pretrained_dir(name, root)}/metrics-{mode}.json"


def pretrained_benchmark(name: str = "{name}", mode: str = "{mode}", root: str = ROOT) -> str:
    return benchmark("pretrained", f"{name}/{mode}", root=root)


# ---------------------------------------------------------------- logs and Snakemake benchmarks
def log(*parts: str, root: str = ROOT) -> str:
    """A job's log: log("train", job) -> results/logs/train/{job}.log."""
    return f"{root}/logs/{'/'.join(parts)}.log"


def benchmark(*parts: str, root: str = ROOT) -> str:
    """A job's Snakemake benchmark (a TSV of time and memory)."""
    return f"{root}/benchmarks/{'/'.join(parts)}.tsv"


# ---------------------------------------------------------------- report stage
def tables_dir(root: str = ROOT) -> str:
    return f"{root}/tables"


def table(filename: str, root: str = ROOT) -> str:
    """A file of the tables stage by its file name ("metrics.csv", the index, the claims)."""
    return f"{tables_dir(root)}/{filename}"


def figures_dir(root: str = ROOT) -> str:
    return f"{root}/figures"


def figure(name: str, root: str = ROOT) -> str:
    """A figure file by its file name (with extension)."""
    return f"{figures_dir(root)}/{name}"


def report_dir(root: str = ROOT) -> str:
    return f"{root}/report"


def report_tex(root: str = ROOT) -> str:
    return f"{report_dir(root)}/report.tex"


def report_bib(root: str = ROOT) -> str:
    return f"{report_dir(root)}/references.bib"


def report_pdf(root: str = ROOT) -> str:
    return f"{report_dir(root)}/report.pdf"


def gpu_locks(root: str = ROOT) -> str:
    """Where jobs that share a machine's GPUs claim one (ganrepro.devices)."""
    return f"{root}/.gpu-locks"
