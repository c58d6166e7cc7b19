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
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ganrepro.report import CLAIMS_JSON, TABLES_INDEX, claims as claimsmod
from ganrepro.report.environment import compute_table, environment_table
from ganrepro.report.inputs import QUANTITIES, Measurement, Results, Unavailable, model_label, suffix_count
from ganrepro.report.latex import Notes, fragment, plain

log = logging.getLogger(__name__)
DASH = "–"


@dataclass
class Table:
    name: str
    caption: str               # plain text; the template escapes it
    data: pd.DataFrame         # -> CSV
    display: pd.DataFrame      # -> LaTeX (strings with footnote marks)
    notes: Notes
    column_format: str
    ragged: tuple[str, ...] = ()   # columns set ragged-right (the p{} ones)


# ---------------------------------------------------------------------------- formatting

def scale(quantity: str) -> float:
    """Shown in percent (precision, recall) or x10^3 (KID); the CSV keeps the raw value."""
    return {"Precision": 100.0, "Recall": 100.0, "KID": 1000.0}.get(quantity, 1.0)


def header(quantity: str, suffix: str = "") -> str:
    unit = {"Precision": " (%)", "Recall": " (%)", "KID": " ×10³"}.get(quantity, "")
    return f"{quantity}{suffix}{unit}"


def show(value: float | None, digits: int = 2) -> str:
    return DASH if value is None else f"{value:.{digits}f}"


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


def table1(results: Results, published: dict) -> Table:
    """The paper's Table 1 regenerated: our last checkpoint beside the published values."""
    notes, rows, shown = Notes(), [], []
    sources = published["sources"]
    means, repl = published["paper_means"], published["replication_fid"]
    for model in results.models:
        for dataset in results.datasets:
            m = results.last(dataset, model)
            suffix = _final_suffix(m)
            n = suffix_count(suffix) if suffix else None
            what = f"this run: {dataset}, {m.kimg} kimg, {n:,} samples" if n else f"this run: {dataset}, {m.kimg} kimg"
            row = {"Model": model_label(model), "Result": what, "source": "this pipeline"}
            disp = dict(row)
            for q in ("FID", "IS", "Precision", "Recall"):
                value = m.get(q, suffix) if suffix else None
                raw, text = cell(value, q, notes)
                row[header(q)] = raw * scale(q) if isinstance(raw, float) else raw
                disp[header(q)] = text
            rows.append(row)
            shown.append(disp)
        if model in means["models"]:
            p = means["models"][model]
            mark = notes.mark(f"paper: {means['note']}; {sources[means['source']]['text']}",
                              sources[means["source"]]["cite"])
            row = {"Model": model_label(model), "Result": "paper, mean of 4 datasets",
                   "source": sources[means["source"]]["text"],
                   header("FID"): p["fid"], header("IS"): p["is"],
                   header("Precision"): p["precision"], header("Recall"): p["recall"]}
            rows.append(row)
            shown.append({**row, "Result": row["Result"] + mark,
                          **{header(q): show(row[header(q)]) for q in ("FID", "IS", "Precision", "Recall")}})
        if model in repl["models"]:
            mark = notes.mark(f"replication, FID only: {repl['note']}", sources[repl["source"]]["cite"])
            for key, label in repl["datasets"].items():
                fid = repl["models"][model].get(key)
                row = {"Model": model_label(model), "Result": f"replication, {label}, {repl['kimg']} kimg",
                       "source": sources[repl["source"]]["text"], header("FID"): fid}
                rows.append(row)
                shown.append({**row, "Result": row["Result"] + mark, header("FID"): show(fid),
                              **{header(q): DASH for q in ("IS", "Precision", "Recall")}})
    cols = ["Model", "Result"] + [header(q) for q in ("FID", "IS", "Precision", "Recall")]
    notes.line(f"{DASH}: not reported by the source, or not in metrics.names")
    return Table("table1", "The paper's main comparison: our last checkpoint beside the published values "
                 "(FID and IS: lower and higher are better; precision and recall in percent)",
                 pd.DataFrame(rows, columns=cols + ["source"]), pd.DataFrame(shown, columns=cols).fillna(DASH),
                 notes, "ll" + "r" * 4)


def metrics_table(results: Results) -> Table:
    """Every metric at every checkpoint of every model (raw JSON values in the CSV)."""
    notes, rows, shown = Notes(), [], []
    measurements = results.measurements()
    keys = sorted({k for m in measurements for k in m.values},
                  key=lambda k: (suffix_count(k[1]), QUANTITIES.index(k[0])))
    for m in measurements:
        row = {"Dataset": m.dataset, "Model": model_label(m.model), "kimg": m.kimg}
        disp = {("", "Dataset"): m.dataset, ("", "Model"): row["Model"], ("", "kimg"): str(m.kimg)}
        for q, s in keys:
            raw, text = cell(m.get(q, s), q, notes)
            row[f"{q}{s}"] = raw
            disp[(f"{suffix_count(s):,} samples", header(q))] = text
        rows.append(row)
        shown.append(disp)
    display = pd.DataFrame(shown)
    display.columns = pd.MultiIndex.from_tuples(display.columns)
    notes.line(f"{DASH}: not measured at this checkpoint (the larger sample count is measured at the last one only)")
    return Table("metrics", "Every metric at every checkpoint (KID x 1000; precision and recall in percent; "
                 "the CSV holds the values exactly as the metrics files do)",
                 pd.DataFrame(rows), display, notes, "llr" + "r" * len(keys))


def noise_table(results: Results) -> Table:
    """The spread of each metric over seeds at the last checkpoint (the claims' noise)."""
    rows = []
    for d in results.datasets:
        for model in results.models:
            m = results.last(d, model)
            for (q, s), entry in sorted(m.noise.items(), key=lambda kv: (suffix_count(kv[0][1]), QUANTITIES.index(kv[0][0]))):
                values = [float(v) for v in entry.get("values", [])]
                rows.append({"Dataset": d, "Model": model_label(model), "Metric": f"{q}{s}",
                             "Seeds": len(values), "Values": " ".join(repr(v) for v in values),
                             "Mean": entry.get("mean"), "Std": entry.get("std")})
    notes = Notes()
    seeds = results.cfg["metrics"]["repeats"]
    notes.line(f"measured under {seeds} seed(s) at the last checkpoint (metrics.repeats); "
               "a claim's FID difference counts only beyond 2 x the larger std")
    data = pd.DataFrame(rows, columns=["Dataset", "Model", "Metric", "Seeds", "Values", "Mean", "Std"])
    shown = []
    for r in rows:
        f = scale(r["Metric"].rstrip("0123456789k"))
        shown.append({**r, "Seeds": str(r["Seeds"]),
                      "Values": ", ".join(f"{float(v) * f:.2f}" for v in r["Values"].split()),
                      "Mean": show(r["Mean"] * f if r["Mean"] is not None else None),
                      "Std": show(r["Std"] * f if r["Std"] is not None else None)})
    if not rows:
        shown = [{c: DASH for c in data.columns}]
        notes.line("no metric was measured under more than one seed, so there is no noise estimate")
    return Table("noise", "Measurement noise at the last checkpoint: each metric under several seeds "
                 "(KID x 1000; precision and recall in percent)",
                 data, pd.DataFrame(shown, columns=data.columns), notes, "lllrlrr")


def _lookup(spec: str, results: Results, hparams: dict[str, Any], devices: list[str]) -> Any:
    if spec == "kimg":
        return results.kimgs[-1]
    if spec == "device":
        return ", ".join(devices) if devices else None
    section, _, key = spec.partition(".")
    source = results.cfg["train"] if section == "train" else hparams
    if key not in source:
        return None
    return source[key]


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


def hparams_table(results: Results, published: dict, hparams: dict[str, Any], model: str,
                  devices: list[str]) -> Table:
    """Hyper-parameters: what the paper states, the official code, the replication, this run."""
    block, sources = published["hparams"], published["sources"]
    rows, notes = [], Notes()
    for entry in block["rows"]:
        values = [_lookup(s, results, hparams, devices) for s in entry["run"]]
        if all(v is None for v in values):
            run = DASH
        else:                      # run_format: how several values read together, e.g. "{0} to {1} px"
            run = entry.get("run_format", ", ".join(["{}"] * len(values))).format(*map(_text, values))
        rows.append({"Hyper-parameter": entry["label"], "Paper": _text(entry.get("paper")),
                     "Official code": _text(entry.get("official")),
                     "Replication": _text(entry.get("replication")), "This run": run})
    for column, key in block["sources"].items():
        notes.line(f"{column}: {sources[key]['text']}", sources[key]["cite"])
    notes.line(f"{DASH}: not stated in the sources we hold (or not set in this run); this run's model "
               f"hyper-parameters are those of {model_label(model)}")
    frame = pd.DataFrame(rows)
    return Table("hparams", "Hyper-parameters: the paper, the official code, the replication and this run",
                 frame, frame, notes, "p{0.2\\linewidth}" + "p{0.17\\linewidth}" * 4, tuple(frame.columns))


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


def claims_table(claims: list[claimsmod.Claim]) -> Table:
    rows = [{"Dataset": c.dataset, "Claim": c.statement, "Verdict": c.verdict, "Reason": c.reason} for c in claims]
    data = pd.DataFrame(rows, columns=["Dataset", "Claim", "Verdict", "Reason"])
    notes = Notes()
    notes.line("the reasons, with the numbers that decide each verdict, are in the discussion and in claims.json")
    return Table("claims", "The paper's claims checked on our measurements", data,
                 data[["Dataset", "Claim", "Verdict"]], notes, "lp{0.62\\linewidth}l", ("Claim",))


# ---------------------------------------------------------------------------- writing

def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_table(table: Table, out: Path, source: str) -> None:
    data = table.data.map(lambda v: plain(v) if isinstance(v, str) else v)
    _atomic_write(out / f"{table.name}.csv", data.to_csv(index=False, lineterminator="\n"))
    _atomic_write(out / f"{table.name}.tex", fragment(table.display, table.notes, table.column_format, source,
                                                          table.ragged))


def build_tables(results: Results, published: dict) -> tuple[list[Table], list[claimsmod.Claim]]:
    from ganrepro.report.environment import run_hparams

    claims = claimsmod.check_results(results)
    model, hparams, devices = run_hparams(results)
    tables = [table1(results, published), metrics_table(results), noise_table(results),
              hparams_table(results, published, hparams, model, devices), datasets_table(results),
              compute_table(results), environment_table(results), published_fid50k_table(published),
              claims_table(claims)]
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
    _atomic_write(out / TABLES_INDEX, json.dumps(index, indent=2) + "\n")
    log.info("wrote %d tables and %d claims to %s", len(tables), len(claims), out)
    return [out / f"{t.name}.{ext}" for t in tables for ext in ("csv", "tex")]
