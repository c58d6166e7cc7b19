"""The paper's claims, checked on our measurements, one verdict each per dataset.

Verdicts: "supported", "not supported", "inconclusive" (the difference is within the
measured noise, or there is no noise estimate to judge it by) and "not tested" (a model
the claim compares is not in the config, or FID was not measured). A difference counts
only when it exceeds 2 x the larger of the two FID standard deviations measured over
seeds at the last checkpoint (metrics.repeats); a difference inside that band is never a
win.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ganrepro.report.inputs import Measurement, Results, Unavailable, count_suffix, median, model_label

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE, NOT_TESTED = "supported", "not supported", "inconclusive", "not tested"
NOISE_FACTOR = 2.0            # a difference must exceed NOISE_FACTOR x the larger FID std
# Our reading of "attention at O(n k) is affordable": a GANformer keeps at least this
# fraction of StyleGAN2's training throughput on the same device.
AFFORDABLE_RATIO = 0.5
BASE, SIMPLEX, DUPLEX = "stylegan2", "ganformer-simplex", "ganformer-duplex"


@dataclass
class Claim:
    id: str                    # lower-fid, duplex-vs-simplex, faster-<model>, attention-cost-<model>
    dataset: str
    statement: str             # the claim, in plain text
    verdict: str
    reason: str                # one or two sentences with the numbers that decide it
    numbers: dict[str, Any] = field(default_factory=dict)


@dataclass
class FinalFID:
    """FID at the last checkpoint: the mean over seeds when measured more than once."""
    value: float
    std: float | None
    seeds: int


@dataclass
class Inputs:
    """What the claims are decided on, for one dataset (built from Results or by hand)."""
    dataset: str
    kimg: int                                   # the last checkpoint
    suffix: str                                 # sample count of the FID used ("10k")
    final: dict[str, FinalFID]                  # model -> FID at the last checkpoint
    curves: dict[str, list[tuple[int, float]]]  # model -> [(kimg, FID)] over checkpoints
    img_per_sec: dict[str, float | None]        # model -> median training img/s
    devices: dict[str, str | None] = field(default_factory=dict)
    missing_reason: str | None = None           # why FID could not be used at all


def _fmt(x: float) -> str:
    return f"{x:.2f}"


def compare(better: str, worse: str, data: Inputs) -> tuple[str, str, dict[str, Any]]:
    """Verdict on 'better has a lower FID than worse' at the last checkpoint."""
    a, b = data.final[better], data.final[worse]
    diff = b.value - a.value
    numbers = {f"fid_{better}": a.value, f"fid_{worse}": b.value, f"std_{better}": a.std,
               f"std_{worse}": b.std, "difference": diff, "kimg": data.kimg}
    said = (f"FID{data.suffix} at {data.kimg} kimg: {model_label(better)} {_fmt(a.value)}, "
            f"{model_label(worse)} {_fmt(b.value)} (difference {_fmt(diff)})")
    if a.std is None or b.std is None:
        one = [model_label(m) for m, f in ((better, a), (worse, b)) if f.std is None]
        return INCONCLUSIVE, (f"{said}; no noise estimate for {' and '.join(one)} (measured with one seed; "
                              "set metrics.repeats to 2 or more)"), numbers
    band = NOISE_FACTOR * max(a.std, b.std)
    numbers["band"] = band
    said += f"; noise band 2 x max std = {_fmt(band)}"
    if diff > band:
        return SUPPORTED, said + ", exceeded", numbers
    if diff < -band:
        return NOT_SUPPORTED, said + f", exceeded in favour of {model_label(worse)}", numbers
    return INCONCLUSIVE, said + ", not exceeded: the difference is within the measured noise", numbers


def reach(curve: list[tuple[int, float]], level: float) -> float | None:
    """First kimg at which the FID curve is at or below `level`, linearly interpolated
    between the checkpoint before and the first one at or below; None if never."""
    prev = None
    for kimg, fid in curve:
        if fid <= level:
            if prev is None or prev[1] == fid:
                return float(kimg)
            k0, f0 = prev
            return k0 + (f0 - level) / (f0 - fid) * (kimg - k0)
        prev = (kimg, fid)
    return None


def _kimg_text(k: float | None) -> str:
    return "not reached" if k is None else f"{k:.1f} kimg"


def faster(model: str, data: Inputs) -> tuple[str, str, dict[str, Any]]:
    """Verdict on 'model reaches StyleGAN2's final FID in fewer kimg than StyleGAN2'."""
    target = data.final[BASE].value
    k_base, k_model = reach(data.curves[BASE], target), reach(data.curves[model], target)
    numbers = {"target_fid": target, f"kimg_{BASE}": k_base, f"kimg_{model}": k_model}
    said = (f"StyleGAN2's FID{data.suffix} at {data.kimg} kimg is {_fmt(target)}; StyleGAN2 first reaches it "
            f"at {_kimg_text(k_base)}, {model_label(model)} at {_kimg_text(k_model)}")
    if k_model is not None and k_base:
        numbers["speedup"] = k_base / k_model if k_model > 0 else None
    stds = [data.final[m].std for m in (BASE, model)]
    if None in stds:
        return INCONCLUSIVE, said + "; no noise estimate to judge the difference by (set metrics.repeats to 2 or more)", numbers
    band = NOISE_FACTOR * max(stds)
    early, late = reach(data.curves[model], target - band), reach(data.curves[model], target + band)
    numbers.update(band=band, kimg_clearly_below=early, kimg_within_noise=late)
    said += f"; with the noise band {_fmt(band)}: clearly below at {_kimg_text(early)}, within noise at {_kimg_text(late)}"
    if early is not None and k_base is not None and early < k_base:
        return SUPPORTED, said, numbers
    if late is None or (k_base is not None and late >= k_base):
        return NOT_SUPPORTED, said, numbers
    return INCONCLUSIVE, said + " (earlier only within the noise)", numbers


def attention_cost(model: str, data: Inputs) -> tuple[str, str, dict[str, Any]]:
    base, mine = data.img_per_sec.get(BASE), data.img_per_sec.get(model)
    numbers = {f"img_per_sec_{BASE}": base, f"img_per_sec_{model}": mine, "threshold": AFFORDABLE_RATIO}
    if not base or not mine:
        return INCONCLUSIVE, "no training throughput was recorded (stats.jsonl is missing or has no ticks)", numbers
    ratio = mine / base
    numbers["ratio"] = ratio
    said = (f"median training throughput {model_label(model)} {mine:.2f} img/s, StyleGAN2 {base:.2f} img/s "
            f"(ratio {ratio:.2f}; the claim holds here at a ratio of {AFFORDABLE_RATIO:.2f} or more)")
    devices = {data.devices.get(BASE), data.devices.get(model)}
    if len(devices) > 1:
        return INCONCLUSIVE, said + f"; the two runs used different devices ({', '.join(map(str, devices))})", numbers
    return (SUPPORTED if ratio >= AFFORDABLE_RATIO else NOT_SUPPORTED), said, numbers


STATEMENTS = {
    "lower-fid": "GANformer duplex reaches a lower FID than StyleGAN2 after the same number of images",
    "duplex-vs-simplex": "duplex attention gives a lower FID than simplex attention",
    "faster": "{label} learns faster: it reaches StyleGAN2's final FID after fewer images than StyleGAN2 needs",
    "attention-cost": "the bipartite attention of {label} is affordable: it keeps at least half of StyleGAN2's training throughput",
}


def check(data: Inputs, models: list[str]) -> list[Claim]:
    """Every claim for one dataset; `models` is the config's model list."""
    ganformers = [m for m in (DUPLEX, SIMPLEX) if m in models]
    plan = [("lower-fid", STATEMENTS["lower-fid"], (DUPLEX, BASE), lambda: compare(DUPLEX, BASE, data), True),
            ("duplex-vs-simplex", STATEMENTS["duplex-vs-simplex"], (DUPLEX, SIMPLEX),
             lambda: compare(DUPLEX, SIMPLEX, data), True)]
    for m in ganformers or [DUPLEX]:
        label = model_label(m)
        plan.append((f"faster-{m}", STATEMENTS["faster"].format(label=label), (m, BASE),
                     lambda m=m: faster(m, data), True))
    for m in ganformers or [DUPLEX]:
        label = model_label(m)
        plan.append((f"attention-cost-{m}", STATEMENTS["attention-cost"].format(label=label), (m, BASE),
                     lambda m=m: attention_cost(m, data), False))
    claims = []
    for cid, statement, needed, decide, needs_fid in plan:
        absent = [model_label(m) for m in needed if m not in models]
        if absent:
            verdict, reason, numbers = NOT_TESTED, f"{' and '.join(absent)} not in the config's models", {}
        elif needs_fid and data.missing_reason:
            verdict, reason, numbers = NOT_TESTED, data.missing_reason, {}
        else:
            verdict, reason, numbers = decide()
        claims.append(Claim(cid, data.dataset, statement, verdict, reason, numbers))
    return claims


def _final(m: Measurement, suffix: str) -> FinalFID | str:
    value = m.get("FID", suffix)
    if value is None:
        return f"{m.path} has no fid{suffix} (is fid in metrics.names?)"
    if isinstance(value, Unavailable):
        return f"fid{suffix} was not measured: {value.reason}"
    entry = m.noise.get(("FID", suffix))
    if entry and entry.get("values") and len(entry["values"]) > 1:
        return FinalFID(float(entry["mean"]), float(entry["std"]), len(entry["values"]))
    return FinalFID(value, None, 1)


def inputs_from_results(results: Results, dataset: str) -> Inputs:
    """Build the claims' inputs for one dataset from the files of a run."""
    suffix = count_suffix(int(results.cfg["metrics"]["num_gen"]))
    last = results.kimgs[-1]
    data = Inputs(dataset, last, suffix, {}, {}, {})
    for model in results.models:
        data.img_per_sec[model] = median([t.get("img_per_sec") for t in results.stats(dataset, model)])
        options = results.options(dataset, model) or {}
        data.devices[model] = (options.get("resolved") or {}).get("device")
        final = _final(results.last(dataset, model), suffix)
        if isinstance(final, str):
            data.missing_reason = data.missing_reason or final
            continue
        data.final[model] = final
        curve = []
        for kimg in results.kimgs[:-1]:
            v = results.measurement(dataset, model, kimg).get("FID", suffix)
            if isinstance(v, float):
                curve.append((kimg, v))
        data.curves[model] = curve + [(last, final.value)]
    return data


def check_results(results: Results) -> list[Claim]:
    claims = []
    for dataset in results.datasets:
        claims += check(inputs_from_results(results, dataset), results.models)
    return claims


def write_claims(claims: list[Claim], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps([dataclasses.asdict(c) for c in claims], indent=2) + "\n")
    os.replace(tmp, path)
