"""The studies in the report: per study its measurements (`collect`, which report.figures
draws), a table and, where the paper states a direction, a verdict decided across training
seeds.

Each study point's runs lie in their own results tree (layout.study_root), which a
`Results` of the point's config reads like the main one. The value of a run is its FID at
the point's last kimg (the mean over sampling seeds where measured under several, as for the
main claims). The verdicts use the main claims' statistics (statistics.py, claims.decide):

- data efficiency, "GANformer's FID degrades less than StyleGAN2's as the training data
  shrink": per training seed, the rise of FID from the largest fraction to the smallest,
  FID(smallest) - FID(largest); the difference of the two models' mean rises (StyleGAN2's
  minus the GANformer's, positive when the data lean the claimed way) with its Welch interval;
- attention resolutions, "the more generator layers use attention, the lower the FID": the
  FID of the range with the fewest attention layers at the dataset's size minus that of the
  range with the most;
- integration, "multiplicative integration is better than additive": FID of `add` minus `mul`.

Other variations (components among them: the paper states no direction for k) get the figure
and the table without a verdict. The paper's values beside ours come from config/published.yaml
`studies:` (by study kind; a missing block or a null value shows as "–").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ganrepro import layout
from ganrepro.protocol import count_suffix
from ganrepro.report import statistics as st
from ganrepro.report import study_table_name
from ganrepro.report.claims import NOT_TESTED, Claim, decide, final_fid
from ganrepro.report.inputs import Results, read_json
from ganrepro.report.latex import DASH, Notes, Table, show
from ganrepro.settings import studies as studymod
from ganrepro.settings.registry import has_attention, model_label, with_role

log = logging.getLogger(__name__)
BASE = with_role("baseline")

STATEMENTS = {
    studymod.DATA_EFFICIENCY: "{label}'s FID degrades less than StyleGAN2's as the training data shrink "
                              "(from {large} to {small} of the images)",
    studymod.ATTENTION_RESOLUTIONS: "{label}: the more generator layers use attention, the lower the FID "
                                    "(attention at {better} against {worse} px)",
    "integration": "{label}: multiplicative integration of the attended latents gives a lower FID than additive",
}


@dataclass
class Study:
    """What one study measured: FID by point, model and training seed."""
    name: str
    points: list[studymod.Point]
    suffix: str                                               # sample count of the FID ("64", "10k")
    fid: dict[int, dict[str, dict[int, float]]] = field(default_factory=dict)   # point -> model -> seed -> FID
    images: dict[int, int | None] = field(default_factory=dict)                # point -> training images
    missing: list[str] = field(default_factory=list)          # why a run has no value

    @property
    def first(self) -> studymod.Point:
        return self.points[0]

    @property
    def models(self) -> list[str]:
        return list(self.first.models)


def point_results(results: Results, point: studymod.Point) -> Results:
    """The files of one study point, read like the main run's."""
    return Results(point.config, layout.study_root(point.study, point.name, root=str(results.root)))


def _images(results: Results, point: studymod.Point) -> int | None:
    """The training images of a point: its subset's count, else the dataset's."""
    if point.subset:
        path = Path(layout.subset_manifest(point.dataset, studymod.fraction_label(point.value), root=str(results.root)))
    else:
        path = Path(layout.manifest(point.dataset, root=str(results.root)))
    if not path.exists():
        log.warning("%s does not exist: the study table shows no image count", path)
        return None
    return read_json(path, "the prepare_dataset or subset_dataset rule writes it").get("count")


def collect(results: Results) -> list[Study]:
    """Every study of the config, with the FID of each of its runs."""
    suffix = count_suffix(int(results.cfg["metrics"]["num_gen"]))
    out = []
    for name, points in studymod.by_study(results.cfg).items():
        study = Study(name, points, suffix)
        for point in points:
            found = point_results(results, point)
            study.images[point.index] = _images(results, point)
            study.fid[point.index] = {}
            for model in point.models:
                study.fid[point.index][model] = {}
                for seed in point.seeds:
                    value = final_fid(found.measurement(point.dataset, model, seed, point.kimg[-1]), suffix)
                    if isinstance(value, str):
                        study.missing.append(value)
                    else:
                        study.fid[point.index][model][seed] = value
        out.append(study)
    return out


# ---------------------------------------------------------------------------- the paper's values

def published_block(published: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """config/published.yaml's `studies.<kind>` (None when absent or null)."""
    block = (published.get("studies") or {}).get(kind)
    return block if isinstance(block, dict) else None


def published_value(block: dict[str, Any] | None, model: str, point: studymod.Point,
                    images: int | None) -> float | None:
    """The paper's value for one model at one point: looked up by the point's value, its
    label, or (a data-efficiency study, whose plot counts images) its image count."""
    if not block:
        return None
    per_model = (block.get("values") or {}).get(model) or {}
    keys = [point.label, point.value if not isinstance(point.value, list) else None, str(point.value)]
    if point.vary == studymod.FRACTION and images is not None:
        keys.append(images)
    for key in keys:
        if key is not None and key in per_model and isinstance(per_model[key], (int, float)):
            return float(per_model[key])
    return None


# ---------------------------------------------------------------------------- verdicts

def _attention_layers(point: studymod.Point, resolution: int) -> int:
    start, end = point.value
    return sum(1 for r in (2 ** i for i in range(2, resolution.bit_length())) if start <= r <= end)


def _compare_points(study: Study, model: str, better: studymod.Point, worse: studymod.Point,
                    statement: str, cid: str) -> Claim:
    """'`better` gives a lower FID than `worse`' for one model, across training seeds."""
    a, b = study.fid[better.index][model], study.fid[worse.index][model]
    if not a or not b:
        return Claim(cid, better.dataset, statement, NOT_TESTED, "FID was not measured at both points",
                     {"study": study.name})
    tag_a, tag_b = f"{better.vary} = {better.label}", f"{worse.vary} = {worse.label}"
    d = st.difference(list(a.values()), list(b.values()))
    said = (f"{model_label(model)}, FID{study.suffix} at {better.kimg[-1]} kimg, mean ± sd over training seeds: "
            f"{tag_a} {_summary(a)}, {tag_b} {_summary(b)}")
    verdict, reason = decide(d, said, tag_a, tag_b, "FID")
    return Claim(cid, better.dataset, statement, verdict, reason,
                 {"study": study.name, "model": model, "better": better.label, "worse": worse.label,
                  **_numbers(d, {better.label: a, worse.label: b})})


def _summary(values: dict[int, float]) -> str:
    s = st.summarize(list(values.values()))
    return f"{s.mean:.2f}" + (f" ± {s.sd:.2f}" if s.sd is not None else "") + f" (n = {s.n})"


def _numbers(d: st.Difference, per_seed: dict[str, dict[int, float]]) -> dict[str, Any]:
    """As the main claims' numbers: `per_seed`, `n`, `mean` and `sd` by side (better first)."""
    better, worse = per_seed
    return {"per_seed": per_seed, "n": {better: d.better.n, worse: d.worse.n},
            "mean": {better: d.better.mean, worse: d.worse.mean}, "sd": {better: d.better.sd, worse: d.worse.sd},
            "difference": d.estimate, "interval": [d.low, d.high],
            "level": st.LEVEL, "df": d.df, "p_improvement": d.p_improvement, "seeds_needed": d.seeds_needed}


def data_efficiency(study: Study, model: str) -> Claim:
    """'model's FID rises less than StyleGAN2's from the largest fraction to the smallest'."""
    order = sorted(study.points, key=lambda p: float(p.value))
    small, large = order[0], order[-1]
    statement = STATEMENTS[studymod.DATA_EFFICIENCY].format(label=model_label(model), large=large.label,
                                                            small=small.label)
    cid = f"study-{study.name}-{model}"
    numbers: dict[str, Any] = {"study": study.name, "model": model, "smallest": small.label, "largest": large.label}
    if BASE not in study.models:
        return Claim(cid, small.dataset, statement, NOT_TESTED, f"the study does not train {model_label(BASE)}", numbers)
    if len(order) < 2:
        return Claim(cid, small.dataset, statement, NOT_TESTED, "the study has one fraction: no rise to compare",
                     numbers)
    rises = {}
    for m in (model, BASE):
        lo, hi = study.fid[small.index][m], study.fid[large.index][m]
        rises[m] = {s: lo[s] - hi[s] for s in lo if s in hi}
    if not rises[model] or not rises[BASE]:
        return Claim(cid, small.dataset, statement, NOT_TESTED, "FID was not measured at both fractions", numbers)
    d = st.difference(list(rises[model].values()), list(rises[BASE].values()))
    said = (f"rise of FID{study.suffix} from fraction {large.label} to {small.label} at {small.kimg[-1]} kimg, per "
            f"training seed, mean ± sd: {model_label(model)} {_summary(rises[model])}, "
            f"{model_label(BASE)} {_summary(rises[BASE])}")
    verdict, reason = decide(d, said, model, BASE, "rise of FID")
    numbers.update(statistic="FID(smallest fraction) - FID(largest fraction) per training seed; difference: "
                             "StyleGAN2's mean rise minus the model's",
                   **_numbers(d, rises))
    return Claim(cid, small.dataset, statement, verdict, reason, numbers)


def verdicts(study: Study, resolution: int) -> list[Claim]:
    """The verdicts of one study where the paper states a direction (none otherwise)."""
    first = study.first
    if first.kind == studymod.DATA_EFFICIENCY:
        return [data_efficiency(study, m) for m in study.models if has_attention(m)]
    if first.vary == studymod.ATTENTION_RESOLUTIONS and len(study.points) > 1:
        layers = {p.index: _attention_layers(p, resolution) for p in study.points}
        better = max(study.points, key=lambda p: (layers[p.index], -p.index))
        worse = min(study.points, key=lambda p: (layers[p.index], p.index))
        if layers[better.index] == layers[worse.index]:
            return []
        return [_compare_points(study, m, better, worse,
                                STATEMENTS[studymod.ATTENTION_RESOLUTIONS].format(
                                    label=model_label(m), better=better.label, worse=worse.label),
                                f"study-{study.name}-{m}") for m in study.models]
    if first.vary == "integration":
        by_value = {p.value: p for p in study.points}
        if "mul" in by_value and "add" in by_value:
            return [_compare_points(study, m, by_value["mul"], by_value["add"],
                                    STATEMENTS["integration"].format(label=model_label(m)),
                                    f"study-{study.name}-{m}") for m in study.models]
    return []


# ---------------------------------------------------------------------------- table

def study_table(study: Study, published: dict[str, Any]) -> Table:
    first = study.first
    block = published_block(published, first.kind)
    rows, shown, notes = [], [], Notes()
    for point in study.points:
        for model in point.models:
            values = study.fid[point.index][model]
            s = st.summarize(list(values.values())) if values else None
            paper = published_value(block, model, point, study.images.get(point.index))
            rows.append({"Study": study.name, first.vary: point.label, "Images": study.images.get(point.index),
                         "Model": model_label(model), "Runs": len(values), "Mean": s.mean if s else None,
                         "SD": s.sd if s else None,
                         "Per seed": " ".join(f"{seed}:{v:.4g}" for seed, v in sorted(values.items())),
                         "Paper": paper})
            shown.append({first.vary.replace("_", " "): point.label,
                          "Images": DASH if study.images.get(point.index) is None else f"{study.images[point.index]:,}",
                          "Model": model_label(model), "n": str(len(values)),
                          f"FID{study.suffix} mean ± sd": DASH if s is None else
                          show(s.mean) + (f" ± {show(s.sd)}" if s.sd is not None else ""),
                          "Paper": show(paper)})
    notes.line(f"{study.name}: {first.vary} varied over the base dataset {first.dataset}; every run trained to "
               f"{first.kimg[-1]} kimg and measured there; n: training runs (seeds {', '.join(map(str, first.seeds))})")
    if block:
        approx = " (approximate: read off a plot)" if block.get("approximate") else ""
        notes.line(f"Paper: {block.get('where', 'the paper')}{approx}" + (
            f", on {block['dataset']}" if block.get("dataset") else "") + "; – where it gives no value")
    else:
        notes.line(f"Paper: config/published.yaml has no values for studies of kind {first.kind}")
    for reason in dict.fromkeys(study.missing):
        notes.line(f"not measured: {reason}")
    data = pd.DataFrame(rows, columns=["Study", first.vary, "Images", "Model", "Runs", "Mean", "SD", "Per seed",
                                       "Paper"])
    return Table(study_table_name(study.name), f"Study {study.name}: FID against {first.vary.replace('_', ' ')} "
                 f"on {first.dataset}", data, pd.DataFrame(shown), notes, "llllll")


def build(results: Results, published: dict[str, Any]) -> tuple[list[Table], list[Claim]]:
    """The studies' tables and claims (empty without studies)."""
    tables, claims = [], []
    for study in collect(results):
        resolution = int(results.cfg["datasets"][study.first.dataset]["resolution"])
        tables.append(study_table(study, published))
        claims += verdicts(study, resolution)
    return tables, claims


def context(claims: list[dict[str, Any]], results: Results, figures: dict[str, Any]) -> list[dict[str, Any]]:
    """What the report template says of each study."""
    out = []
    for name, points in studymod.by_study(results.cfg).items():
        first = points[0]
        out.append({"name": name, "kind": first.kind, "vary": first.vary, "dataset": first.dataset,
                    "models": list(first.models), "points": [p.label for p in points],
                    "seeds": list(first.seeds), "kimg": first.kimg[-1], "table": study_table_name(name),
                    "figure": figures.get("studies", {}).get(name),
                    "claims": [c for c in claims if (c.get("numbers") or {}).get("study") == name]})
    return out

