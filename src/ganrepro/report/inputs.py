"""Read what the earlier stages wrote, for the tables, figures and claims.

Everything here only reads files under results/ (and config/published.yaml). A file the
report cannot do without is an error naming the file and the rule that makes it; a file
that only adds detail (a benchmark, stats.jsonl) is allowed to be missing and shows as
"–" in the tables, with a warning in the log.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ganrepro import layout
from ganrepro.errors import GanreproError
from ganrepro.protocol import DCI, FID_MODES, suffix_count

log = logging.getLogger(__name__)

# Display names and order of the measured quantities.
QUANTITIES = ("FID", "KID", "Precision", "Recall", "IS")
_METRIC_KEY = re.compile(r"^(fid|kid|pr|is)(\d+k?)$")
_OTHER_KEY = re.compile(rf"^{DCI}\d+k?$")      # read by report.disentanglement, not a quantity here
_NOISE_KEY = re.compile(r"^(fid|kid|precision|recall|is)(\d+k?)$")
_NOISE_NAMES = {"fid": "FID", "kid": "KID", "precision": "Precision", "recall": "Recall", "is": "IS"}


class ReportError(GanreproError):
    """An input of the report is missing or malformed."""




@dataclass(frozen=True)
class Unavailable:
    """A metric the evaluation could not measure, with its reason (shown as n/a)."""
    reason: str


Value = float | Unavailable


@dataclass
class Measurement:
    """One metrics JSON: results/metrics/{dataset}/{model}/seed{seed}/kimg{kimg:06d}.json."""
    dataset: str
    model: str
    seed: int                    # the training seed of the run the snapshot comes from
    kimg: int
    path: Path
    raw: dict[str, Any]
    values: dict[tuple[str, str], Value] = field(default_factory=dict)   # (quantity, suffix) -> value
    noise: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def suffixes(self) -> list[str]:
        return sorted({s for _, s in self.values}, key=suffix_count)

    def get(self, quantity: str, suffix: str) -> Value | None:
        return self.values.get((quantity, suffix))

    def run_value(self, quantity: str, suffix: str) -> Value | None:
        """The value that stands for this snapshot across sampling seeds: the mean over them
        where it was measured under several (metrics.repeats), else the one measurement."""
        value = self.get(quantity, suffix)
        entry = self.noise.get((quantity, suffix))
        if isinstance(value, float) and entry and len(entry.get("values") or []) > 1:
            return float(entry["mean"])
        return value

    def std(self, quantity: str, suffix: str) -> float | None:
        entry = self.noise.get((quantity, suffix))
        return float(entry["std"]) if entry and entry.get("std") is not None else None


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ReportError(f"{where} must be a finite number (got {value!r})")
    return float(value)


def parse_measurement(raw: Any, path: Path, dataset: str, model: str, seed: int, kimg: int) -> Measurement:
    """Check the shape of a metrics JSON and flatten its values by (quantity, count)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("metrics"), dict):
        raise ReportError(f"{path} has no 'metrics' mapping; run the evaluate rule again")
    if raw.get("kimg") is not None and int(raw["kimg"]) != kimg:
        raise ReportError(f"{path} says kimg {raw['kimg']} but its name says {kimg}; run the evaluate rule again")
    m = Measurement(dataset, model, seed, kimg, path, raw)
    for key, value in raw["metrics"].items():
        match = _METRIC_KEY.match(key)
        if not match:
            if not _OTHER_KEY.match(key):
                log.warning("%s: ignoring unknown metric %r", path, key)
            continue
        kind, suffix = match.groups()
        where = f"{path}: metrics.{key}"
        if kind in ("fid", "kid"):
            m.values[(kind.upper(), suffix)] = _number(value, where)
        elif kind == "pr":
            if not isinstance(value, dict):
                raise ReportError(f"{where} must be a mapping with precision and recall")
            m.values[("Precision", suffix)] = _number(value.get("precision"), f"{where}.precision")
            m.values[("Recall", suffix)] = _number(value.get("recall"), f"{where}.recall")
        else:
            mean = value.get("mean") if isinstance(value, dict) else value
            m.values[("IS", suffix)] = _number(mean, f"{where}.mean")
    for key, reason in (raw.get("unavailable") or {}).items():
        match = _METRIC_KEY.match(key)
        if not match:
            continue
        kind, suffix = match.groups()
        for name in (("Precision", "Recall") if kind == "pr" else (kind.upper(),)):
            m.values.setdefault((name, suffix), Unavailable(str(reason)))
    for key, entry in (raw.get("noise") or {}).items():
        match = _NOISE_KEY.match(key)
        if match and isinstance(entry, dict):
            m.noise[(_NOISE_NAMES[match.group(1)], match.group(2))] = entry
    return m


class Results:
    """The files of one pipeline run under `root` (results/), for the config `cfg`."""

    def __init__(self, cfg: dict[str, Any], root: str | Path = layout.ROOT):
        self.cfg = cfg
        self.root = Path(root)
        self.datasets: list[str] = list(cfg["datasets"])
        self.models: list[str] = list(cfg["models"])
        self.seeds: list[int] = [int(s) for s in cfg["seeds"]]
        self.kimgs: list[int] = [int(k) for k in cfg["kimg"]]
        self._measurements: dict[tuple[str, str, int, int], Measurement] = {}

    # -- paths (ganrepro.layout, under this root) -----------------------------------
    def metrics_path(self, dataset: str, model: str, seed: int, kimg: int) -> Path:
        return Path(layout.metrics(dataset, model, seed, kimg, root=str(self.root)))

    def run_dir(self, dataset: str, model: str, seed: int) -> Path:
        return Path(layout.run_dir(dataset, model, seed, root=str(self.root)))

    def snapshot_path(self, dataset: str, model: str, seed: int, kimg: int) -> Path:
        return Path(layout.snapshot(dataset, model, seed, kimg, root=str(self.root)))

    def train_benchmark_paths(self, dataset: str, model: str, seed: int) -> list[Path]:
        """One file per training job: per checkpoint interval with train.segments, else one."""
        return [Path(p) for p in layout.train_benchmarks(dataset, model, seed, self.kimgs,
                                                         self.cfg["train"]["segments"], root=str(self.root))]

    def evaluate_benchmark_path(self, dataset: str, model: str, seed: int, kimg: int) -> Path:
        return Path(layout.evaluate_benchmark(dataset, model, seed, kimg, root=str(self.root)))

    def throughput_path(self, dataset: str) -> Path:
        return Path(layout.throughput(dataset, root=str(self.root)))

    # -- readers -------------------------------------------------------------------
    def measurement(self, dataset: str, model: str, seed: int, kimg: int) -> Measurement:
        key = (dataset, model, seed, kimg)
        if key not in self._measurements:
            path = self.metrics_path(dataset, model, seed, kimg)
            raw = read_json(path, f"the evaluate rule (ganrepro evaluate) writes it from "
                                  f"{self.snapshot_path(dataset, model, seed, kimg)}")
            self._measurements[key] = parse_measurement(raw, path, dataset, model, seed, kimg)
        return self._measurements[key]

    def measurements(self) -> list[Measurement]:
        return [self.measurement(d, m, s, k) for d in self.datasets for m in self.models for s in self.seeds
                for k in self.kimgs]

    def last(self, dataset: str, model: str, seed: int) -> Measurement:
        return self.measurement(dataset, model, seed, self.kimgs[-1])

    def stats(self, dataset: str, model: str, seed: int) -> list[dict[str, Any]]:
        """The ticks of stats.jsonl (empty, with a warning, if the file is missing)."""
        path = Path(layout.run_file(dataset, model, seed, "stats.jsonl", root=str(self.root)))
        if not path.exists():
            log.warning("%s does not exist: the training columns will show '–'", path)
            return []
        ticks = []
        for number, line in enumerate(path.read_text().splitlines(), 1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                log.warning("%s line %d is not JSON (a killed run?); skipped", path, number)
                continue
            if isinstance(record, dict) and "kimg" in record:
                ticks.append(record)
        return ticks

    def options(self, dataset: str, model: str, seed: int) -> dict[str, Any] | None:
        path = Path(layout.run_file(dataset, model, seed, "training_options.json", root=str(self.root)))
        if not path.exists():
            log.warning("%s does not exist: this run's settings come from the config", path)
            return None
        return read_json(path, "the train rule writes it")

    def run_settings(self, dataset: str, model: str) -> dict[str, Any]:
        """What the runs of `model` on `dataset` used (the seeds share it): the effective
        recipe `train`, every hyper-parameter `hparams`, the dataset's `preset`, and the
        `departures` from the official code the training recorded (None where no run
        recorded its options; the rest then comes from the config)."""
        from ganrepro.settings import presets
        from ganrepro.settings.run import effective_run

        for seed in self.seeds:
            options = self.options(dataset, model, seed)
            if options and isinstance(options.get("hparams"), dict):
                return {"train": options["train"], "hparams": options["hparams"],
                        "preset": options.get("preset", presets.preset_of(self.cfg["datasets"][dataset])),
                        "departures": (options.get("resolved") or {}).get("departures")}
        run = effective_run(self.cfg, dataset, model)
        return {"train": run.train, "hparams": run.hparams, "preset": run.preset, "departures": None}

    def pretrained(self) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
        """(name, its config entry, metrics record) of every released checkpoint measured,
        one per FID mode it was measured in (results/pretrained/{name}/metrics-{mode}.json)."""
        out = []
        for name, spec in (self.cfg.get("pretrained") or {}).items():
            found = [Path(layout.pretrained_metrics(name, mode, root=str(self.root))) for mode in FID_MODES]
            found = [p for p in found if p.exists()]
            if not found:
                log.warning("no metrics of the released checkpoint %s in %s", name,
                            layout.pretrained_dir(name, root=str(self.root)))
            out += [(name, spec, read_json(p, "the evaluate_pretrained rule writes it")) for p in found]
        return out

    def throughput(self, dataset: str) -> dict[str, Any] | None:
        """The attention-cost benchmark of one dataset (None, with a warning, if missing)."""
        path = self.throughput_path(dataset)
        if not path.exists():
            log.warning("%s does not exist: the attention-cost claim is not tested", path)
            return None
        raw = read_json(path, "the bench_throughput rule (ganrepro bench throughput) writes it")
        if not isinstance(raw, dict) or not isinstance(raw.get("models"), dict):
            raise ReportError(f"{path} has no 'models' mapping; run the bench_throughput rule again")
        return raw

    def manifest(self, dataset: str) -> dict[str, Any]:
        path = Path(layout.manifest(dataset, root=str(self.root)))
        return read_json(path, "the prepare_dataset rule (ganrepro data prepare) writes it")

    def benchmark(self, path: Path) -> dict[str, float] | None:
        """The first row of a Snakemake benchmark TSV (s, max_rss, cpu_time, ...)."""
        if not path.exists():
            log.warning("%s does not exist (Snakemake writes it when the rule runs)", path)
            return None
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        if len(lines) < 2:
            raise ReportError(f"{path} has no measurement row; run its rule again")
        head, row = lines[0].split("\t"), lines[1].split("\t")
        out = {}
        for key, value in zip(head, row):
            try:
                out[key] = float(value)
            except ValueError:
                pass          # h:m:s and "NA" fields
        return out


def read_json(path: Path, made_by: str) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ReportError(f"{path} does not exist; {made_by}") from None
    except json.JSONDecodeError as err:
        raise ReportError(f"{path} is not valid JSON ({err}); {made_by}, so run that again") from None


_PUBLISHED_KEYS = ("sources", "paper_means", "official_fid50k", "replication_fid", "replication_throughput",
                   "paper_claims", "hparams")


def load_published(path: str | Path) -> dict[str, Any]:
    """config/published.yaml, checked for the blocks the report uses."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ReportError(f"{path} does not exist; it holds the published figures (config/published.yaml "
                          "in the repository)") from None
    except yaml.YAMLError as err:
        raise ReportError(f"{path} is not valid YAML ({err})") from None
    if not isinstance(data, dict):
        raise ReportError(f"{path} must be a mapping with the keys {', '.join(_PUBLISHED_KEYS)}")
    missing = [k for k in _PUBLISHED_KEYS if k not in data]
    if missing:
        raise ReportError(f"{path} lacks the key(s) {', '.join(missing)}")
    for name, block in data.items():
        if isinstance(block, dict) and "source" in block and block["source"] not in data["sources"]:
            raise ReportError(f"{path}: {name}.source is {block['source']!r}; allowed: "
                              f"{', '.join(data['sources'])} (the keys of 'sources')")
    return data


def median(values: list[float]) -> float | None:
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2
