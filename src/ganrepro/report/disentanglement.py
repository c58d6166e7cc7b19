"""The report's disentanglement section: the paper's Table 3 scores (DCI and modularity) of
every model, measured at the last checkpoint of each run on a `shapes` dataset with the
colour-area proxy (ganrepro.metrics.disentanglement, docs/metrics.md), beside the paper's
values, and the claim "a GANformer is more disentangled than StyleGAN2" decided on the
disentanglement score D across training seeds with the same Welch interval as the FID
claims.

D and C mean something only where the codes predict the factors: with an informativeness
(held-out R^2) near zero the importances are fitted noise. A comparison is therefore decided
only where both models' mean informativeness reaches MIN_INFORMATIVENESS; otherwise it is
"not tested" and says why.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ganrepro import protocol
from ganrepro.report import statistics as st
from ganrepro.report.claims import BASE, DUPLEX, NOT_TESTED, SIMPLEX, Claim, format_number, seeds_needed_text
from ganrepro.report.inputs import ReportError, Results
from ganrepro.report.latex import DASH, Notes, Table
from ganrepro.settings.registry import model_label

# Table 3's columns that the proxy computes, in the paper's order, and how they are shown.
COLUMNS = ("disentanglement", "modularity", "completeness", "informativeness")
HEADERS = {"disentanglement": "D", "modularity": "Mod.", "completeness": "C", "informativeness": "I"}
# Our threshold: the codes must explain at least this share of the colour areas' variance on
# held-out images (mean R^2) for D to be compared. An unrelated code scores |I| < 0.05.
MIN_INFORMATIVENESS = 0.1
STATEMENT = ("{label} is more disentangled than StyleGAN2 (DCI disentanglement D of z against the colour areas "
             "of shapes scenes, a proxy of the paper's Table 3)")


def planned(results: Results, dataset: str) -> tuple[int | None, str]:
    """(images scored, "") where the config plans the scores for `dataset`, else (None, why not)."""
    source = results.cfg["datasets"][dataset]["source"]
    n = protocol.plan(results.cfg["metrics"], protocol.LAST, source).disentanglement
    if n:
        return n, ""
    if not results.cfg["metrics"].get("disentanglement"):
        return None, "not measured: config key metrics.disentanglement is null"
    return None, (f"not measured: the colour segmenter reads only scenes of the source(s) "
                  f"{', '.join(protocol.DISENTANGLEMENT_SOURCES)}, and {dataset} comes from {source}")


def scores(results: Results, dataset: str) -> tuple[dict[str, dict[int, dict[str, float]]], dict[str, str]]:
    """model -> training seed -> the four scores at the run's last checkpoint, and
    model -> why a run has none (measured but unavailable, e.g. no colour varied)."""
    n, _ = planned(results, dataset)
    found: dict[str, dict[int, dict[str, float]]] = {}
    missing: dict[str, str] = {}
    if n is None:
        return found, missing
    name = protocol.dci_name(n)
    for model in results.models:
        found[model] = {}
        for seed in results.seeds:
            m = results.last(dataset, model, seed)
            entry = m.raw["metrics"].get(name)
            if entry is None:
                reason = (m.raw.get("unavailable") or {}).get(name)
                if reason is None:
                    raise ReportError(f"{m.path} has no {name} although the config plans it; run the evaluate "
                                      "rule again (snakemake reruns it when its params changed)")
                missing.setdefault(model, f"seed {seed}: {reason}")
                continue
            if not isinstance(entry, dict) or not all(isinstance(entry.get(c), (int, float)) for c in COLUMNS):
                raise ReportError(f"{m.path}: metrics.{name} must be a mapping with {', '.join(COLUMNS)}")
            found[model][seed] = {c: float(entry[c]) for c in COLUMNS}
    return found, missing


def _summary(values: list[float]) -> st.Summary | None:
    return st.summarize(values) if values else None


def _mean_sd(s: st.Summary | None) -> str:
    if s is None:
        return DASH
    return f"{s.mean:.3f}" + (f" ± {s.sd:.3f}" if s.sd is not None else "")


def table(results: Results, published: dict[str, Any]) -> Table:
    """Our D, modularity, C and I per dataset and model (mean ± sd over training seeds)
    beside the paper's Table 3."""
    paper = published.get("disentanglement") or {}
    rows, shown, notes = [], [], Notes()
    for d in results.datasets:
        n, why = planned(results, d)
        if n is None:
            notes.line(f"{d}: {why}")
            continue
        found, missing = scores(results, d)
        for model in results.models:
            row: dict[str, Any] = {"Dataset": d, "Model": model_label(model), "Runs": len(found[model]),
                                   "Images": n}
            disp: dict[str, str] = {"Dataset": d, "Model": model_label(model), "n": str(len(found[model]))}
            for c in COLUMNS:
                s = _summary([v[c] for v in found[model].values()])
                row[f"{c} mean"], row[f"{c} sd"] = (s.mean, s.sd) if s else (None, None)
                disp[HEADERS[c]] = _mean_sd(s)
            theirs = (paper.get("models") or {}).get(model) or {}
            for c in COLUMNS:
                row[f"paper {c}"] = theirs.get(c)
                disp[f"Paper {HEADERS[c]}"] = DASH if theirs.get(c) is None else f"{theirs[c]:.3f}"
            if model in missing:
                disp["Model"] += notes.mark(f"not measured in every run: {missing[model]}")
            rows.append(row)
            shown.append(disp)
    columns = ["Dataset", "Model", "n", *HEADERS.values(), *(f"Paper {h}" for h in HEADERS.values())]
    if not shown:
        shown = [{c: DASH for c in columns}]
    notes.line("ours: mean ± sd over training seeds (n runs) at the last checkpoint, codes = the sampled z, factors = "
               "the share of each image covered by each of the seven chromatic CLEVR colours (a colour segmenter on "
               "the shapes scenes), importances from a Lasso; I = mean held-out R², so it is not on the paper's scale")
    if paper:
        src = published["sources"][paper["source"]]
        notes.line(f"Paper: {paper['where']}, {paper['images']} generated {paper['dataset']} images, factors = areas of "
                   f"semantic classes from a pre-trained segmenter (not our proxy); its StyleGAN row is listed as "
                   f"StyleGAN2", src["cite"])
    data = pd.DataFrame(rows, columns=["Dataset", "Model", "Runs", "Images",
                                       *(f"{c} {k}" for c in COLUMNS for k in ("mean", "sd")),
                                       *(f"paper {c}" for c in COLUMNS)])
    return Table("disentanglement", "Disentanglement (Table 3's scores) on the shapes colour-area proxy, beside the "
                 "paper's Table 3", data, pd.DataFrame(shown, columns=columns), notes, "ll" + "r" * (len(columns) - 2))


def compare(model: str, found: dict[str, dict[int, dict[str, float]]], n: int) -> tuple[str, str, dict[str, Any]]:
    """Verdict on 'model has a higher D than StyleGAN2', across training seeds."""
    info = {m: st.summarize([v["informativeness"] for v in found[m].values()]).mean for m in (model, BASE)}
    d_values = {m: {seed: v["disentanglement"] for seed, v in found[m].items()} for m in (model, BASE)}
    numbers: dict[str, Any] = {"num_images": n, "informativeness": info, "min_informativeness": MIN_INFORMATIVENESS}
    if min(info.values()) < MIN_INFORMATIVENESS:
        return NOT_TESTED, (f"not decidable: the codes do not predict the factors (I = {info[model]:.3f} for "
                            f"{model_label(model)}, {info[BASE]:.3f} for StyleGAN2, mean held-out R² over "
                            f"{n} images; D is compared only where both reach {MIN_INFORMATIVENESS})"), numbers
    # statistics.difference(better, worse) is mean(worse) - mean(better): with StyleGAN2 as
    # "better" it is D(model) - D(StyleGAN2), positive when the data lean the claimed way.
    d = st.difference(list(d_values[BASE].values()), list(d_values[model].values()))
    numbers.update(per_seed=d_values, n={model: d.worse.n, BASE: d.better.n},
                   mean={model: d.worse.mean, BASE: d.better.mean}, sd={model: d.worse.sd, BASE: d.better.sd},
                   difference=d.estimate, interval=[d.low, d.high], level=st.LEVEL, df=d.df,
                   p_improvement=d.p_improvement, seeds_needed=d.seeds_needed)
    said = (f"D over {n} images at the last checkpoint, mean ± sd over training seeds: {model_label(model)} "
            f"{format_number(d.worse.mean, 3)} ± {format_number(d.worse.sd, 3)} (n = {d.worse.n}), StyleGAN2 {format_number(d.better.mean, 3)} "
            f"± {format_number(d.better.sd, 3)} (n = {d.better.n}); I = {info[model]:.3f} and {info[BASE]:.3f}")
    if min(d.worse.n, d.better.n) < 2:
        return st.INCONCLUSIVE, said + "; a verdict needs at least two training seeds per model", numbers
    said += (f"; D of {model_label(model)} minus StyleGAN2: {format_number(d.estimate, 3)}, {st.LEVEL:.0%} interval "
             f"[{format_number(d.low, 3)}, {format_number(d.high, 3)}] (Welch t, {format_number(d.df, 1)} df); P({model_label(model)} more "
             f"disentangled) = {d.p_improvement:.2f} over pairs of runs")
    verdict = st.verdict(d)
    if verdict == st.SUPPORTED:
        return verdict, said + "; the interval excludes 0 in the claimed direction", numbers
    if verdict == st.NOT_SUPPORTED:
        return verdict, said + "; the interval excludes 0 against the claim", numbers
    return verdict, said + f"; the interval contains 0: {seeds_needed_text(d)}", numbers


def claims(results: Results) -> list[Claim]:
    """One claim per GANformer in the config against StyleGAN2, per dataset whose runs are
    scored (a dataset that is not scored adds none: the scope section says why)."""
    out = []
    ganformers = [m for m in (DUPLEX, SIMPLEX) if m in results.models] or [DUPLEX]
    for dataset in results.datasets:
        n, _ = planned(results, dataset)
        if n is None:
            continue
        found, missing = scores(results, dataset)
        for model in ganformers:
            statement = STATEMENT.format(label=model_label(model))
            absent = [model_label(m) for m in (model, BASE) if m not in results.models]
            lacking = [m for m in (model, BASE) if not absent and not found[m]]
            if absent:
                verdict, reason, numbers = NOT_TESTED, f"{' and '.join(absent)} not in the config's models", {}
            elif lacking:
                verdict, reason, numbers = NOT_TESTED, f"{model_label(lacking[0])}: {missing[lacking[0]]}", {}
            else:
                verdict, reason, numbers = compare(model, found, n)
            out.append(Claim(f"disentanglement-{model}", dataset, statement, verdict, reason, numbers))
    return out


def context(results: Results) -> dict[str, Any]:
    """What the template's disentanglement text needs: the datasets scored (with the image
    count) and those not scored (with the reason)."""
    measured, skipped = {}, {}
    for d in results.datasets:
        n, why = planned(results, d)
        if n is None:
            skipped[d] = why
        else:
            measured[d] = n
    return {"measured": measured, "skipped": skipped, "min_informativeness": MIN_INFORMATIVENESS}
