"""The report's tables: pandas frames -> results/tables/{name}.csv and {name}.tex.

Each table has two frames: `data`, the raw values for the CSV (metric values exactly as
the metrics JSON holds them, "unavailable" where a metric could not be measured, empty where it
was not asked for), and `display`, the formatted strings the LaTeX fragment shows, with
footnote marks. The .tex fragment is a booktabs tabular (escaped by pandas' Styler) plus
its notes; the report wraps it in a table float with a caption from index.json.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from ganrepro.files import atomic_write_text
from ganrepro.protocol import count_suffix, suffix_count
from ganrepro.report import CLAIMS_JSON, TABLES_INDEX, claims as claimsmod, disentanglement
from ganrepro.report import statistics as st
from ganrepro.report.environment import compute_table, environment_table, run_settings
from ganrepro.report.inputs import QUANTITIES, Measurement, Results, Unavailable, Value
from ganrepro.report.latex import DASH, Notes, Table, fragment, plain, show
from ganrepro.settings.registry import MODELS, model_label

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- formatting

def scale(quantity: str) -> float:
    """Shown in percent (precision, recall) or x10^3 (KID); the CSV keeps the raw value."""
    return {"Precision": 100.0, "Recall": 100.0, "KID": 1000.0}.get(quantity, 1.0)


def header(quantity: str, suffix: str = "") -> str:
    unit = {"Precision": " (%)", "Recall": " (%)", "KID": " ×10³"}.get(quantity, "")
    return f"{quantity}{suffix}{unit}"


def cell(value: Any, quantity: str, notes: Notes) -> tuple[Any, str]:
    """(CSV value, display string) of one measured value."""
    if value is None:
        return None, DASH
    if isinstance(value, Unavailable):
        return "unavailable", "n/a" + notes.mark(f"{quantity} not measured: {value.reason}")
    return value, f"{value * scale(quantity):.2f}"


# ---------------------------------------------------------------------------- the tables

def _final_suffix(m: Measurement) -> str | None:
    """The largest sample count measured at the last checkpoint (fid50k over fid10k)."""
    found = [s for (q, s), v in m.values.items() if q == "FID" and isinstance(v, float)]
    found = found or m.suffixes()
    return max(found, key=suffix_count) if found else None


def seed_values(results: Results, dataset: str, model: str, quantity: str, suffix: str) -> dict[int, Value | None]:
    """training seed -> the run's value at the last checkpoint."""
    return {s: results.last(dataset, model, s).run_value(quantity, suffix) for s in results.seeds}


def across_seeds(values: dict[int, Value | None], quantity: str, notes: Notes) -> tuple[dict[str, Any], str]:
    """(CSV fields, display text "mean ± sd (n)") of one quantity over the training runs."""
    numbers = [v for v in values.values() if isinstance(v, float)]
    missing = [v for v in values.values() if isinstance(v, Unavailable)]
    if not numbers:
        raw, text = cell(missing[0] if missing else None, quantity, notes)
        return {"mean": raw, "sd": None, "n": 0}, text
    s = st.summarize(numbers)
    f = scale(quantity)
    text = f"{s.mean * f:.2f}" + (f" ± {s.sd * f:.2f}" if s.sd is not None else "") + f" ({s.n})"
    return {"mean": s.mean * f, "sd": s.sd * f if s.sd is not None else None, "n": s.n}, text


def _table1_groups(results: Results, published: dict) -> list[tuple[str | None, list[str]]]:
    """The rows of the paper's Table 1 in its order (the README's FID-50k rows): each
    published row key with the trained models that report under it, then every trained
    model without a published row (key None)."""
    groups = [(key, [m for m in results.models if m in MODELS and MODELS[m].published_as == key])
              for key in published["official_fid50k"]["models"]]
    placed = {m for _, ms in groups for m in ms}
    return groups + [(None, [m]) for m in results.models if m not in placed]


_TABLE1_QUANTITIES = ("FID", "IS", "Precision", "Recall")


def _our_rows(results: Results, model: str, notes: Notes) -> Iterator[tuple[dict, dict]]:
    """Table 1's rows (CSV row, displayed row) of our last checkpoint of `model`, one per
    dataset: mean ± sd over the training seeds at the largest sample count measured."""
    for dataset in results.datasets:
        m = results.last(dataset, model, results.seeds[0])
        suffix = _final_suffix(m)
        n = suffix_count(suffix) if suffix else None
        what = f"this run: {dataset}, {m.kimg} kimg" + (f", {n:,} samples" if n else "")
        row = {"Model": model_label(model), "Result": what, "source": "this pipeline"}
        disp = dict(row)
        for q in _TABLE1_QUANTITIES:
            if suffix is None:
                row[header(q)], disp[header(q)] = None, DASH
                continue
            fields, text = across_seeds(seed_values(results, dataset, model, q, suffix), q, notes)
            row[header(q)], row[f"{header(q)} sd"] = fields["mean"], fields["sd"]
            row[f"{header(q)} n"] = fields["n"]
            disp[header(q)] = text
        yield row, disp


def _published_rows(model: str, published: dict, notes: Notes) -> Iterator[tuple[dict, dict]]:
    """Table 1's rows of the paper's mean over its datasets and of the replication, for `model`."""
    sources, means, repl = published["sources"], published["paper_means"], published["replication_fid"]
    if model in means["models"]:
        p = means["models"][model]
        mark = notes.mark(f"paper: {means['note']}; {sources[means['source']]['text']}",
                          sources[means["source"]]["cite"])
        row = {"Model": model_label(model), "Result": "paper, mean of 4 datasets",
               "source": sources[means["source"]]["text"],
               header("FID"): p["fid"], header("IS"): p["is"],
               header("Precision"): p["precision"], header("Recall"): p["recall"]}
        yield row, {**row, "Result": row["Result"] + mark,
                    **{header(q): show(row[header(q)]) for q in _TABLE1_QUANTITIES}}
    if model in repl["models"]:
        mark = notes.mark(f"replication, FID only: {repl['note']}", sources[repl["source"]]["cite"])
        for rkey, label in repl["datasets"].items():
            fid = repl["models"][model].get(rkey)
            row = {"Model": model_label(model), "Result": f"replication, {label}, {repl['kimg']} kimg",
                   "source": sources[repl["source"]]["text"], header("FID"): fid}
            yield row, {**row, "Result": row["Result"] + mark, header("FID"): show(fid),
                        **{header(q): DASH for q in ("IS", "Precision", "Recall")}}


def _readme_row(key: str, published: dict, notes: Notes) -> tuple[dict, dict]:
    """Table 1's row of the official README's FID-50k for the paper's row `key` (one cell,
    one CSV column per dataset)."""
    readme, src = published["official_fid50k"], published["sources"][published["official_fid50k"]["source"]]
    uncertain = {(u["model"], u["dataset"]): u["note"] for u in readme.get("uncertain", [])}
    values = readme["models"][key]
    label = readme.get("labels", {}).get(key, key)
    row = {"Model": label, "Result": "official README, FID-50k", "source": src["text"],
           **dict(zip(_readme_columns(published), values))}
    fids = [show(v) + (notes.mark(uncertain[(key, d)]) if (key, d) in uncertain else "")
            for d, v in zip(readme["datasets"], values)]
    label_marks = notes.mark(uncertain[(key, "all")]) if (key, "all") in uncertain else ""
    if not any(MODELS[m].published_as == key for m in MODELS):
        label_marks += notes.mark("not a model of this pipeline, so only its published values (see the text)")
    return row, {"Model": label + label_marks,
                 "Result": row["Result"] + notes.mark(f"{src['text']}; {readme['note']}; the FID cell "
                                                      f"lists {' / '.join(readme['datasets'])}", src["cite"]),
                 header("FID"): " / ".join(fids), **{header(q): DASH for q in ("IS", "Precision", "Recall")}}


def _readme_columns(published: dict) -> list[str]:
    return [f"README FID-50k {d}" for d in published["official_fid50k"]["datasets"]]


def table1(results: Results, published: dict) -> Table:
    """The paper's Table 1 regenerated, row by row (GAN, k-GAN, SAGAN, StyleGAN2, VQGAN,
    GANformer, as config/published.yaml's official_fid50k lists them): for every model
    trained here, our last checkpoint (mean ± sd over training seeds, with the number of
    runs), the paper's and the replication's values where published; for every row, the
    official README's FID-50k on its four datasets (one cell; one CSV column each). A row
    no model of this pipeline reports under (VQGAN) keeps only its published values."""
    notes, pairs = Notes(), []
    for key, trained in _table1_groups(results, published):
        for model in trained:
            pairs += _our_rows(results, model, notes)
            pairs += _published_rows(model, published, notes)
        if key is not None:
            pairs.append(_readme_row(key, published, notes))
    rows, shown = [row for row, _ in pairs], [disp for _, disp in pairs]
    quantities, readme_cols = _TABLE1_QUANTITIES, _readme_columns(published)
    cols = ["Model", "Result"] + [header(q) for q in quantities]
    extra = [f"{header(q)} {x}" for q in quantities for x in ("sd", "n")]
    notes.line("this run: mean ± standard deviation over the training seeds, with the number of runs in "
               "brackets; each run's value is the mean over its sampling seeds where measured under several")
    notes.line(f"{DASH}: not reported by the source, or not in metrics.names")
    return Table("table1", "The paper's main comparison: our last checkpoint beside the published values "
                 "(FID and IS: lower and higher are better; precision and recall in percent)",
                 pd.DataFrame(rows, columns=cols + extra + readme_cols + ["source"]),
                 pd.DataFrame(shown, columns=cols).fillna(DASH), notes, "ll" + "r" * 4)


def metrics_table(results: Results) -> Table:
    """Every metric at every checkpoint of every training run (raw JSON values in the CSV)."""
    notes, rows, shown = Notes(), [], []
    measurements = results.measurements()
    keys = sorted({k for m in measurements for k in m.values},
                  key=lambda k: (suffix_count(k[1]), QUANTITIES.index(k[0])))
    for m in measurements:
        row = {"Dataset": m.dataset, "Model": model_label(m.model), "Seed": m.seed, "kimg": m.kimg}
        disp = {("", "Dataset"): m.dataset, ("", "Model"): row["Model"], ("", "Seed"): str(m.seed),
                ("", "kimg"): str(m.kimg)}
        for q, s in keys:
            raw, text = cell(m.get(q, s), q, notes)
            row[f"{q}{s}"] = raw
            disp[(f"{suffix_count(s):,} samples", header(q))] = text
        rows.append(row)
        shown.append(disp)
    display = pd.DataFrame(shown)
    display.columns = pd.MultiIndex.from_tuples(display.columns)
    notes.line("Seed: the training seed of the run; values under the first sampling seed (metrics.seed)")
    notes.line(f"{DASH}: not measured at this checkpoint (the larger sample count is measured at the last one only)")
    return Table("metrics", "Every metric at every checkpoint of every training run (KID x 1000; precision and "
                 "recall in percent; the CSV holds the values exactly as the metrics files do)",
                 pd.DataFrame(rows), display, notes, "llrr" + "r" * len(keys))


def noise_table(results: Results) -> Table:
    """The two components of the noise at the last checkpoint, per model and metric: the
    spread over training seeds (what the claims are decided against) and the spread over
    sampling seeds of one trained network (pooled over the runs)."""
    rows, shown = [], []
    for d in results.datasets:
        for model in results.models:
            lasts = [results.last(d, model, s) for s in results.seeds]
            keys = sorted({k for m in lasts for k in m.noise} | {k for m in lasts for k, v in m.values.items()
                                                                 if k[0] == "FID" and isinstance(v, float)},
                          key=lambda k: (suffix_count(k[1]), QUANTITIES.index(k[0])))
            for q, s in keys:
                per_seed = {m.seed: m.run_value(q, s) for m in lasts}
                numbers = [v for v in per_seed.values() if isinstance(v, float)]
                if not numbers:
                    continue
                train = st.summarize(numbers)
                sampling, df = st.pooled_sd([[float(v) for v in (m.noise.get((q, s)) or {}).get("values", [])]
                                             for m in lasts])
                ratio = train.sd / sampling if train.sd is not None and sampling else None
                f = scale(q)
                rows.append({"Dataset": d, "Model": model_label(model), "Metric": f"{q}{s}",
                             "Training seeds": train.n, "Per seed": " ".join(repr(v) for v in numbers),
                             "Training sd": train.sd, "Sampling sd": sampling, "Sampling df": df,
                             "Ratio": ratio})
                shown.append({"Dataset": d, "Model": model_label(model), "Metric": f"{q}{s}",
                              "Runs": str(train.n), "Mean": show(train.mean * f),
                              "Training sd": show(train.sd * f if train.sd is not None else None),
                              "Sampling sd (df)": (f"{sampling * f:.2f} ({df})" if sampling is not None else DASH),
                              "Ratio": show(ratio, 1)})
    notes = Notes()
    repeats = results.cfg["metrics"]["repeats"]
    notes.line("Training sd: standard deviation of the runs' values over the training seeds (each run's value is "
               f"the mean over its {repeats} sampling seed(s)); the claims are decided against it")
    notes.line(f"Sampling sd: one trained network measured under {repeats} sampling seeds (metrics.repeats), pooled "
               "over the runs, with its degrees of freedom; Ratio: training sd / sampling sd")
    data = pd.DataFrame(rows, columns=["Dataset", "Model", "Metric", "Training seeds", "Per seed", "Training sd",
                                       "Sampling sd", "Sampling df", "Ratio"])
    columns = ["Dataset", "Model", "Metric", "Runs", "Mean", "Training sd", "Sampling sd (df)", "Ratio"]
    if not shown:
        shown = [{c: DASH for c in columns}]
        notes.line("no metric was measured at the last checkpoint")
    return Table("noise", "Noise at the last checkpoint: spread over training seeds against spread over sampling "
                 "seeds (KID x 1000; precision and recall in percent)",
                 data, pd.DataFrame(shown, columns=columns), notes, "lllrrrrr")


def _lookup(spec: str, results: Results, settings: dict[str, Any], devices: list[str]) -> Any:
    if spec == "kimg":
        return results.kimgs[-1]
    if spec == "device":
        return ", ".join(devices) if devices else None
    section, _, key = spec.partition(".")
    return settings["train" if section == "train" else "hparams"].get(key)


def _text(value: Any) -> str:
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def hparams_table(results: Results, published: dict, settings: dict[str, dict[str, Any]], model: str,
                  devices: list[str]) -> Table:
    """Hyper-parameters: what the paper states, the official code, the replication, and the
    effective values of this run (one column per dataset when there are several)."""
    block, sources = published["hparams"], published["sources"]
    runs = {("This run" if len(settings) == 1 else f"This run: {d}"): s for d, s in settings.items()}
    rows, notes = [], Notes()
    for entry in block["rows"]:
        row = {"Hyper-parameter": entry["label"], "Paper": _text(entry.get("paper")),
               "Official code": _text(entry.get("official")), "Replication": _text(entry.get("replication"))}
        for column, s in runs.items():
            values = [_lookup(spec, results, s, devices) for spec in entry["run"]]
            if all(v is None for v in values):
                row[column] = DASH
            else:                  # run_format: how several values read together, e.g. "{0} to {1} px"
                row[column] = entry.get("run_format", ", ".join(["{}"] * len(values))).format(*map(_text, values))
        rows.append(row)
    for column, key in block["sources"].items():
        notes.line(f"{column}: {sources[key]['text']}", sources[key]["cite"])
    presets_used = ", ".join(f"{d}: {s['preset']}" for d, s in settings.items())
    notes.line(f"this run: the values training used (the config's top level, the dataset's preset and its own "
               f"overrides; preset {presets_used}); the model hyper-parameters are those of {model_label(model)}")
    notes.line(f"{DASH}: not stated in the sources we hold (or not set in this run)")
    frame = pd.DataFrame(rows)
    width = 0.68 / (3 + len(runs))
    return Table("hparams", "Hyper-parameters: the paper, the official code, the replication and this run",
                 frame, frame, notes, "p{0.2\\linewidth}" + f"p{{{width:.2f}\\linewidth}}" * (3 + len(runs)),
                 tuple(frame.columns))


def departures_table(results: Results) -> Table:
    """Every setting of this run that differs from the official code's for its model and
    its dataset's preset, as the training runs recorded them; identical departures of
    several models on one dataset share a row."""
    grouped: dict[tuple, list[str]] = {}
    unknown = []
    for d in results.datasets:
        for m in results.models:
            found = results.run_settings(d, m)["departures"]
            if found is None:
                unknown.append(f"{d}/{m}")
                continue
            for dep in found:
                key = (d, dep["key"], json.dumps(dep["official"]), json.dumps(dep["value"]))
                grouped.setdefault(key, []).append(m)
    rows = [{"Dataset": d, "Models": ", ".join(model_label(m) for m in ms), "Setting": key,
             "Official code": _text(json.loads(official)), "This run": _text(json.loads(value))}
            for (d, key, official, value), ms in grouped.items()]
    notes = Notes()
    notes.line("official code: the preset of github.com/dorarad/gansformer (--ganformer-default for GANformer, "
               "--baseline StyleGAN2) with the dataset's per-dataset settings; settings of how a run is carried "
               "out (device, threads, ticks, memory format) are not departures")
    if unknown:
        notes.line(f"not recorded (no training_options.json): {', '.join(unknown)}")
    frame = pd.DataFrame(rows, columns=["Dataset", "Models", "Setting", "Official code", "This run"])
    return Table("departures", "Departures from the official code in this run", frame, frame, notes,
                 "lp{0.3\\linewidth}lll", ("Models",))


def datasets_table(results: Results) -> Table:
    rows, shown, notes = [], [], Notes()
    for d in results.datasets:
        man = results.manifest(d)
        skipped = man.get("skipped") or []
        reasons: dict[str, int] = {}
        for s in skipped:
            reasons[s.get("reason", "?")] = reasons.get(s.get("reason", "?"), 0) + 1
        row = {"Dataset": d, "Source": man.get("source"), "URL": man.get("source_url") or "",
               "Images": man.get("count"), "Resolution": man.get("resolution"), "Channels": man.get("channels"),
               "Source sha256": man.get("source_sha256") or "", "Images sha256": man.get("images_sha256") or "",
               "Skipped": len(skipped)}
        rows.append(row)
        skip_text = str(len(skipped))
        if reasons:
            top = "; ".join(f"{n} x {r}" for r, n in sorted(reasons.items(), key=lambda kv: -kv[1])[:3])
            skip_text += notes.mark(f"{d}: {top}")
        src = row["Source"] + (notes.mark(f"{d} from {row['URL']}") if row["URL"] else "")
        shown.append({"Dataset": d, "Source": src, "Images": f"{row['Images']:,}",
                      "Resolution": f"{row['Resolution']}²", "Source sha256": (row["Source sha256"] or DASH)[:12],
                      "Images sha256": row["Images sha256"][:12] or DASH, "Skipped": skip_text})
    notes.line("sha256 shown to 12 hex digits (in full in the CSV and in dataset.json); images sha256 is "
               "that of the stored pixels")
    return Table("datasets", "Datasets as prepared for this run", pd.DataFrame(rows), pd.DataFrame(shown),
                 notes, "llrrllr")


def published_fid50k_table(published: dict) -> Table:
    block = published["official_fid50k"]
    src = published["sources"][block["source"]]
    notes = Notes()
    uncertain = {(u["model"], u["dataset"]): u["note"] for u in block.get("uncertain", [])}
    rows, shown = [], []
    for key, values in block["models"].items():
        label = block.get("labels", {}).get(key, key)
        row = {"Model": label, **dict(zip(block["datasets"], values))}
        disp = {"Model": label + (notes.mark(uncertain[(key, "all")]) if (key, "all") in uncertain else "")}
        for d, v in zip(block["datasets"], values):
            disp[d] = show(v) + (notes.mark(uncertain[(key, d)]) if (key, d) in uncertain else "")
        rows.append(row)
        shown.append(disp)
    notes.line(f"{src['text']}; {block['note']}", src["cite"])
    return Table("published_fid50k", "Published FID-50k of the official code's README", pd.DataFrame(rows),
                 pd.DataFrame(shown), notes, "l" + "r" * len(block["datasets"]))


_MODE_TEXT = {"clean": "clean-fid clean", "legacy_tensorflow": "clean-fid legacy TF"}


def pretrained_table(results: Results, published: dict) -> Table:
    """The released checkpoints: our FID beside the official README's FID-50k, with the
    spread over sampling seeds; every FID names the protocol that measured it."""
    block = published["official_fid50k"]
    readme_protocol = "TF Inception (official metrics code)"
    rows, shown, notes = [], [], Notes()
    for name, spec, rec in results.pretrained():
        n = max(rec["num_gen"])
        key = f"fid{count_suffix(n)}"
        noise = (rec.get("noise") or {}).get(key) or {}
        ours = noise.get("mean", rec["metrics"].get(key))
        row_key = MODELS[rec["model"]].published_as if rec["model"] in MODELS else rec["model"]
        readme = None
        if spec.get("published") and row_key in block["models"]:
            readme = block["models"][row_key][block["datasets"].index(spec["published"])]
        source = rec.get("source") or {}
        rows.append({"Checkpoint": name, "Dataset": rec["dataset"], "Model": rec["model"],
                     "Protocol": rec["fid_mode"], "Images": n, "Truncation": rec.get("truncation", 1.0),
                     "FID": ours, "FID sd": noise.get("std"), "Sampling seeds": len(noise.get("values", [])) or 1,
                     "README FID-50k": readme, "README column": spec.get("published"),
                     "README protocol": readme_protocol if readme is not None else None,
                     "Difference": None if readme is None or ours is None else ours - readme,
                     "File sha256": source.get("sha256"), "Device": rec.get("device")})
        sd = noise.get("std")
        shown.append({"Checkpoint": name, "Dataset": rec["dataset"], "Model": model_label(rec["model"]),
                      "Protocol": _MODE_TEXT.get(rec["fid_mode"], rec["fid_mode"]),
                      "Our FID": f"{show(ours)} ± {show(sd)} ({len(noise['values'])})" if sd is not None
                      else show(ours),
                      "Images": f"{n:,}", "README FID-50k": show(readme) if readme is not None else DASH})
    notes.line("our FID: mean ± sd over sampling seeds (their number in parentheses) of one network; the "
               "protocol names clean-fid's mode (legacy TF = NVIDIA's Inception with the TF resize, the protocol of "
               "the README's numbers; clean = PIL resize)")
    notes.line(f"README FID-50k: {published['sources'][block['source']]['text']}, measured with the "
               f"{readme_protocol}; {block['note']}", published["sources"][block["source"]]["cite"])
    columns = ["Checkpoint", "Dataset", "Model", "Protocol", "Images", "Our FID", "README FID-50k"]
    return Table("pretrained", "Released checkpoints: our FID beside the official README's FID-50k",
                 pd.DataFrame(rows, columns=list(rows[0]) if rows else ["Checkpoint"]),
                 pd.DataFrame(shown, columns=columns), notes, "lllllrr")


def _interval_text(numbers: dict[str, Any]) -> str:
    low, high = (numbers.get("interval") or [None, None])[:2]
    if "difference" not in numbers:
        return DASH
    if low is None:
        return f"{numbers['difference']:.2f}"
    return f"{numbers['difference']:.2f} [{low:.2f}, {high:.2f}]"


def claims_table(claims: list[claimsmod.Claim]) -> Table:
    rows, shown = [], []
    for c in claims:
        x = c.numbers
        n = x.get("n") or {}
        needed = x.get("seeds_needed")
        rows.append({"Dataset": c.dataset, "Claim": c.statement, "Verdict": c.verdict,
                     "Runs": "/".join(str(v) for v in n.values()) or x.get("rounds"),
                     "Difference": x.get("difference", x.get("ratio")),
                     "Low": (x.get("interval") or [None, None])[0], "High": (x.get("interval") or [None, None])[1],
                     "P(improvement)": x.get("p_improvement"), "Seeds needed": needed, "Reason": c.reason})
        if "ratio" in x:
            low, high = x["interval"]
            diff = f"ratio {x['ratio']:.2f}" + (f" [{low:.2f}, {high:.2f}]" if low is not None else "")
        else:
            diff = _interval_text(x)
        seeds = DASH if needed is None else (f"> {st.MAX_SEEDS}" if needed > st.MAX_SEEDS else str(needed))
        shown.append({"Dataset": c.dataset, "Claim": c.statement, "Verdict": c.verdict,
                      "n": "/".join(str(v) for v in n.values()) or (str(x["rounds"]) if "rounds" in x else DASH),
                      "Difference [95% interval]": diff,
                      "P(impr.)": show(x.get("p_improvement")), "Seeds needed": seeds})
    data = pd.DataFrame(rows, columns=["Dataset", "Claim", "Verdict", "Runs", "Difference", "Low", "High",
                                       "P(improvement)", "Seeds needed", "Reason"])
    notes = Notes()
    notes.line("n: training runs of the two models compared (rounds of the throughput benchmark for the cost "
               "claims); Difference: the claimed-worse model's mean minus the claimed-better one's (FID, or kimg "
               "to reach the target), positive when the data lean the claimed way, with its 95% Welch interval")
    notes.line("P(impr.): the share of pairs of runs in which the claimed-better model is better; Seeds needed: "
               "seeds per model that would detect the observed difference with 80% power")
    notes.line("the reasons, with the numbers that decide each verdict, are in the discussion and in claims.json")
    return Table("claims", "The paper's claims decided across training seeds", data,
                 pd.DataFrame(shown), notes, "lp{0.34\\linewidth}llp{0.17\\linewidth}rr", ("Claim", "Difference [95% interval]"))


def throughput_table(results: Results) -> Table:
    """The attention-cost measurement: each model's training step timed interleaved."""
    rows, shown, notes = [], [], Notes()
    for d in results.datasets:
        bench = results.throughput(d)
        if not bench:
            continue
        base = bench["models"].get(claimsmod.BASE)
        for model, m in bench["models"].items():
            ratio = low = high = None
            if base and model != claimsmod.BASE:
                ratio, low, high = st.log_ratio_interval([b / x for b, x in zip(base["seconds"], m["seconds"])])
            rows.append({"Dataset": d, "Model": model_label(model), "img/s": m["img_per_sec"],
                         "Ratio": ratio, "Low": low, "High": high, "Rounds": len(m["seconds"]),
                         "Batch": bench.get("batch"), "Device": bench.get("device")})
            shown.append({"Dataset": d, "Model": model_label(model), "img/s": show(m["img_per_sec"], 1),
                          "vs StyleGAN2 [95% interval]": DASH if ratio is None else
                          f"{ratio:.2f}" + (f" [{low:.2f}, {high:.2f}]" if low is not None else ""),
                          "Rounds": str(len(m["seconds"]))})
        notes.line(f"{d}: {bench.get('device', 'device not recorded')}; batch {bench.get('batch')}, "
                   f"{bench.get('steps_per_round')} steps per model per round")
    columns = ["Dataset", "Model", "img/s", "vs StyleGAN2 [95% interval]", "Rounds"]
    if not shown:
        shown = [{c: DASH for c in columns}]
        notes.line("no throughput benchmark was found (results/throughput/)")
    notes.line("each model's training step (G and D phases, the lazy R1 step amortized) timed alone, the models "
               "interleaved round by round in one process; ratio: the geometric mean over rounds of the model's "
               "img/s relative to StyleGAN2's in the same round")
    return Table("throughput", "Training throughput measured for the attention-cost claim",
                 pd.DataFrame(rows, columns=["Dataset", "Model", "img/s", "Ratio", "Low", "High", "Rounds", "Batch",
                                             "Device"]), pd.DataFrame(shown, columns=columns), notes, "llrlr")


def write_table(table: Table, out: Path, source: str) -> None:
    data = table.data.map(lambda v: plain(v) if isinstance(v, str) else v)
    atomic_write_text(out / f"{table.name}.csv", data.to_csv(index=False, lineterminator="\n"))
    atomic_write_text(out / f"{table.name}.tex", fragment(table.display, table.notes, table.column_format, source,
                                                          table.ragged))


def build_tables(results: Results, published: dict) -> tuple[list[Table], list[claimsmod.Claim]]:
    from ganrepro.report import studies

    claims = claimsmod.check_results(results) + disentanglement.claims(results)
    study_tables, study_claims = studies.build(results, published)
    claims += study_claims
    model, settings, devices = run_settings(results)
    tables = [table1(results, published), metrics_table(results), noise_table(results), throughput_table(results),
              hparams_table(results, published, settings, model, devices), departures_table(results),
              datasets_table(results),
              compute_table(results), environment_table(results), published_fid50k_table(published),
              pretrained_table(results, published),
              claims_table(claims), disentanglement.table(results, published)] + study_tables
    return tables, claims


def write_tables(results: Results, published: dict, out: str | Path) -> list[Path]:
    """Write every table (CSV + .tex), claims.json and index.json to `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tables, claims = build_tables(results, published)
    index = {}
    for t in tables:
        write_table(t, out, str(results.root))
        index[t.name] = {"caption": t.caption, "csv": f"{t.name}.csv", "tex": f"{t.name}.tex", "rows": len(t.data)}
    claimsmod.write_claims(claims, out / CLAIMS_JSON)
    atomic_write_text(out / TABLES_INDEX, json.dumps(index, indent=2) + "\n")
    log.info("wrote %d tables and %d claims to %s", len(tables), len(claims), out)
    return [out / f"{t.name}.{ext}" for t in tables for ext in ("csv", "tex")]
