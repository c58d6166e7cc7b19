"""The paper's claims, decided across training seeds, one verdict each per dataset.

Verdict rules (stated in the report too). Each model is trained once per training seed.
For a claim "A is better than B" we take one value per run (the FID at the last
checkpoint, or the kimg a run needs to reach a target FID), and the 95 % interval of the
difference of the two models' means (Welch's t, see statistics.py):

- supported: the interval excludes 0 in the claimed direction;
- not supported: it excludes 0 against the claim;
- inconclusive: it contains 0, or a model has a single training run (no interval), and the
  verdict says how many seeds per model would detect the observed difference;
- not tested: a model the claim compares is not in the config, or FID was not measured.

The attention-cost claim is decided from a dedicated benchmark (results/throughput/),
where each model's training step was timed alone and interleaved with the others on one
device, never from the throughput of training jobs that shared the machine.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ganrepro.files import atomic_write_text
from ganrepro.protocol import count_suffix
from ganrepro.report import statistics as st
from ganrepro.report.inputs import Measurement, Results, Unavailable
from ganrepro.settings.registry import model_label, with_role

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE, NOT_TESTED = st.SUPPORTED, st.NOT_SUPPORTED, st.INCONCLUSIVE, "not tested"
# Our reading of "attention at O(n k) is affordable": a GANformer keeps at least this
# fraction of StyleGAN2's training throughput on the same device.
AFFORDABLE_RATIO = 0.5
BASE, SIMPLEX, DUPLEX = (with_role(role) for role in ("baseline", "simplex", "duplex"))


@dataclass
class Claim:
    id: str                    # lower-fid, duplex-vs-simplex, faster-<model>, attention-cost-<model>
    dataset: str
    statement: str             # the claim, in plain text
    verdict: str
    reason: str                # the numbers that decide it, in words
    numbers: dict[str, Any] = field(default_factory=dict)   # the same, for claims.json


@dataclass
class Inputs:
    """What the claims are decided on, for one dataset (built from Results or by hand)."""
    dataset: str
    kimg: int                                               # the last checkpoint
    suffix: str                                             # sample count of the FID used ("10k")
    final: dict[str, dict[int, float]]                      # model -> seed -> FID at the last checkpoint
    curves: dict[str, dict[int, list[tuple[int, float]]]]   # model -> seed -> [(kimg, FID)]
    throughput: dict[str, Any] | None = None                # results/throughput/{dataset}.json
    missing_reason: str | None = None                       # why FID could not be used at all


def format_number(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def seeds_needed_text(d: st.Difference) -> str:
    if d.seeds_needed is None:
        return "the seeds needed cannot be estimated (no spread measured, or no difference)"
    if d.seeds_needed > st.MAX_SEEDS:
        return f"more than {st.MAX_SEEDS} seeds per model would be needed to detect a difference this small"
    return (f"about {d.seeds_needed} seeds per model would detect a difference of this size with "
            f"{st.POWER:.0%} power")


def _numbers(d: st.Difference, better: str, worse: str, values: dict[str, dict[int, float]]) -> dict[str, Any]:
    return {"per_seed": values, "n": {better: d.better.n, worse: d.worse.n},
            "mean": {better: d.better.mean, worse: d.worse.mean}, "sd": {better: d.better.sd, worse: d.worse.sd},
            "difference": d.estimate, "interval": [d.low, d.high], "level": st.LEVEL, "df": d.df,
            "p_improvement": d.p_improvement, "seeds_needed": d.seeds_needed}


def decide(d: st.Difference, said: str, better: str, worse: str, quantity: str) -> tuple[str, str]:
    """The verdict and its reason for one Difference (the rules of the module docstring)."""
    n = min(d.better.n, d.worse.n)
    if n < 2:
        one = [model_label(m) for m, s in ((better, d.better), (worse, d.worse)) if s.n < 2]
        return INCONCLUSIVE, (f"{said}; one training run of {' and '.join(one)}: a verdict needs at least two "
                              "training seeds per model (config key seeds)")
    said += (f"; {quantity} of {model_label(worse)} minus {model_label(better)}: {format_number(d.estimate)}, "
             f"{st.LEVEL:.0%} interval [{format_number(d.low)}, {format_number(d.high)}] (Welch t, {format_number(d.df, 1)} df); "
             f"P({model_label(better)} better) = {d.p_improvement:.2f} over pairs of runs")
    verdict = st.verdict(d)
    if verdict == SUPPORTED:
        return verdict, said + "; the interval excludes 0 in the claimed direction"
    if verdict == NOT_SUPPORTED:
        return verdict, said + "; the interval excludes 0 against the claim"
    return verdict, said + f"; the interval contains 0: {seeds_needed_text(d)}"


def _summary_text(model: str, values: dict[int, float]) -> str:
    s = st.summarize(list(values.values()))
    spread = f" ± {format_number(s.sd)}" if s.sd is not None else ""
    return f"{model_label(model)} {format_number(s.mean)}{spread} (n = {s.n})"


def compare(better: str, worse: str, data: Inputs) -> tuple[str, str, dict[str, Any]]:
    """Verdict on 'better has a lower FID than worse' at the last checkpoint, across seeds."""
    a, b = data.final[better], data.final[worse]
    d = st.difference(list(a.values()), list(b.values()))
    said = (f"FID{data.suffix} at {data.kimg} kimg, mean ± sd over training seeds: {_summary_text(better, a)}, "
            f"{_summary_text(worse, b)}")
    verdict, reason = decide(d, said, better, worse, "FID")
    return verdict, reason, {**_numbers(d, better, worse, {better: a, worse: b}), "kimg": data.kimg}


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


def faster(model: str, data: Inputs) -> tuple[str, str, dict[str, Any]]:
    """Verdict on 'model reaches StyleGAN2's final FID in fewer kimg than StyleGAN2', from
    the kimg each run needs to reach the target.

    The target is the worst final FID among StyleGAN2's runs, so that every StyleGAN2 run
    reaches it within the run. A run of `model` that never reaches it counts as reaching it
    at the last checkpoint: a lower bound of its true kimg, so such a run can never make the
    claim look supported (a supported verdict then needs every run of `model` to reach it).
    """
    target = max(data.final[BASE].values())
    kimgs: dict[str, dict[int, float]] = {BASE: {}, model: {}}
    censored = {BASE: [], model: []}
    for m in (BASE, model):
        for seed, curve in data.curves[m].items():
            k = reach(curve, target)
            if k is None:
                censored[m].append(seed)
                k = float(data.kimg)
            kimgs[m][seed] = k
    d = st.difference(list(kimgs[model].values()), list(kimgs[BASE].values()))
    said = (f"target: FID{data.suffix} {format_number(target)}, the worst of StyleGAN2's runs at {data.kimg} kimg; kimg "
            f"to reach it, mean ± sd over training seeds: {_summary_text(model, kimgs[model])}, "
            f"{_summary_text(BASE, kimgs[BASE])}")
    if censored[model]:
        said += (f" ({len(censored[model])} run(s) of {model_label(model)} never reached it and count as "
                 f"{data.kimg} kimg)")
    verdict, reason = decide(d, said, model, BASE, "kimg")
    if verdict == SUPPORTED and censored[model]:
        verdict, reason = INCONCLUSIVE, reason + ", but not every run reached the target"
    numbers = {**_numbers(d, model, BASE, kimgs), "target_fid": target, "never_reached": censored}
    return verdict, reason, numbers


def attention_cost(model: str, data: Inputs) -> tuple[str, str, dict[str, Any]]:
    """Verdict on 'model keeps at least AFFORDABLE_RATIO of StyleGAN2's training throughput',
    from the interleaved benchmark: one ratio per round, a t interval on their logarithms."""
    bench = data.throughput
    numbers: dict[str, Any] = {"threshold": AFFORDABLE_RATIO}
    if not bench or BASE not in bench["models"] or model not in bench["models"]:
        return INCONCLUSIVE, "the throughput benchmark (results/throughput/) has no measurement of both models", numbers
    base, mine = bench["models"][BASE]["seconds"], bench["models"][model]["seconds"]
    ratios = [b / m for b, m in zip(base, mine)]            # model's img/s relative to StyleGAN2's, per round
    ratio, low, high = st.log_ratio_interval(ratios)
    numbers.update(device=bench.get("device"), rounds=len(ratios), ratios=ratios, ratio=ratio, interval=[low, high],
                   level=st.LEVEL, **{f"img_per_sec_{m}": bench["models"][m]["img_per_sec"] for m in (BASE, model)})
    said = (f"training steps timed alone and interleaved on {bench.get('device', 'one device')}, "
            f"{len(ratios)} rounds: {model_label(model)} {bench['models'][model]['img_per_sec']:.1f} img/s, "
            f"StyleGAN2 {bench['models'][BASE]['img_per_sec']:.1f} img/s; ratio {ratio:.2f}, {st.LEVEL:.0%} "
            f"interval [{format_number(low)}, {format_number(high)}] (the claim holds here at a ratio of {AFFORDABLE_RATIO:.2f} "
            "or more)")
    if low is None:
        return INCONCLUSIVE, said + "; one round gives no interval", numbers
    if low >= AFFORDABLE_RATIO:
        return SUPPORTED, said, numbers
    if high < AFFORDABLE_RATIO:
        return NOT_SUPPORTED, said, numbers
    return INCONCLUSIVE, said + "; the interval contains the threshold", numbers


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
        plan.append((f"faster-{m}", STATEMENTS["faster"].format(label=model_label(m)), (m, BASE),
                     lambda m=m: faster(m, data), True))
    for m in ganformers or [DUPLEX]:
        plan.append((f"attention-cost-{m}", STATEMENTS["attention-cost"].format(label=model_label(m)), (m, BASE),
                     lambda m=m: attention_cost(m, data), False))
    claims = []
    for cid, statement, needed, decide_, needs_fid in plan:
        absent = [model_label(m) for m in needed if m not in models]
        if absent:
            verdict, reason, numbers = NOT_TESTED, f"{' and '.join(absent)} not in the config's models", {}
        elif needs_fid and data.missing_reason:
            verdict, reason, numbers = NOT_TESTED, data.missing_reason, {}
        else:
            verdict, reason, numbers = decide_()
        claims.append(Claim(cid, data.dataset, statement, verdict, reason, numbers))
    return claims


def final_fid(m: Measurement, suffix: str) -> float | str:
    """FID at a run's last checkpoint: the mean over the sampling seeds when measured under
    several (metrics.repeats), else the one value; a string says why there is none."""
    value = m.run_value("FID", suffix)
    if value is None:
        return f"{m.path} has no fid{suffix} (is fid in metrics.names?)"
    if isinstance(value, Unavailable):
        return f"fid{suffix} was not measured: {value.reason}"
    return value


def inputs_from_results(results: Results, dataset: str) -> Inputs:
    """Build the claims' inputs for one dataset from the files of a run."""
    suffix = count_suffix(int(results.cfg["metrics"]["num_gen"]))
    last = results.kimgs[-1]
    data = Inputs(dataset, last, suffix, {}, {}, results.throughput(dataset))
    for model in results.models:
        data.final[model], data.curves[model] = {}, {}
        for seed in results.seeds:
            final = final_fid(results.last(dataset, model, seed), suffix)
            if isinstance(final, str):
                data.missing_reason = data.missing_reason or final
                continue
            data.final[model][seed] = final
            curve = []
            for kimg in results.kimgs[:-1]:
                v = results.measurement(dataset, model, seed, kimg).get("FID", suffix)
                if isinstance(v, float):
                    curve.append((kimg, v))
            data.curves[model][seed] = curve + [(last, final)]
    return data


def check_results(results: Results) -> list[Claim]:
    claims = []
    for dataset in results.datasets:
        claims += check(inputs_from_results(results, dataset), results.models)
    return claims


def write_claims(claims: list[Claim], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps([dataclasses.asdict(c) for c in claims], indent=2) + "\n")
