"""Computational requirements and the software/hardware environment of a run: the
compute and environment tables and the facts the report's setup section states."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import pandas as pd

from ganrepro import machine
from ganrepro.report.inputs import Results, median
from ganrepro.report.latex import DASH, Notes, Table, show
from ganrepro.settings.registry import model_label, with_role


def git_commit(where: str | Path = Path(__file__).parent) -> str:
    """The ganrepro checkout's commit (not the results folder's, which may be anywhere)."""
    return machine.git_commit(where) or "unknown"


def this_machine() -> dict[str, Any]:
    """The machine the report is rendered on (the training device is in each run's options)."""
    cpu = machine.cpu_name()
    memory = None
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    except (ValueError, OSError, AttributeError):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": memory,
            "os": f"{platform.system()} {platform.release()}", "python": platform.python_version()}


def run_device(options: dict[str, Any] | None) -> str | None:
    if not options:
        return None
    device = (options.get("resolved") or {}).get("device")
    if device and device.startswith("cuda") and options.get("cuda_device"):
        return f"{device} ({options['cuda_device']})"
    return device


def run_settings(results: Results) -> tuple[str, dict[str, dict[str, Any]], list[str]]:
    """(model, {dataset: {"train": recipe, "hparams": hyper-parameters}}, training devices)
    for the hyper-parameter table: the effective values a run recorded in its
    training_options.json, of a GANformer model (duplex first) when one is configured, else
    of the first model."""
    preferred = [m for m in map(with_role, ("duplex", "simplex")) if m in results.models] or results.models
    model = preferred[0]
    devices = sorted({d for ds in results.datasets for m in results.models for s in results.seeds
                      if (d := run_device(results.options(ds, m, s)))})
    return model, {d: results.run_settings(d, model) for d in results.datasets}, devices


def generator_parameters(options: dict[str, Any] | None) -> int | None:
    """G's parameter count as the training run recorded it (the report loads no snapshot)."""
    return ((options or {}).get("resolved") or {}).get("parameters", {}).get("G")


def hms(seconds: float | None) -> str:
    if seconds is None:
        return DASH
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def compute_table(results: Results):
    rows, shown = [], []
    for d, model, seed in ((d, m, s) for d in results.datasets for m in results.models for s in results.seeds):
        ticks = results.stats(d, model, seed)
        options = results.options(d, model, seed)
        trains = [results.benchmark(p) for p in results.train_benchmark_paths(d, model, seed)]
        train = {"s": sum(b["s"] for b in trains if b and "s" in b),
                 "max_rss": max(b.get("max_rss", 0.0) for b in trains if b)} if any(trains) else None
        evals = [results.benchmark(results.evaluate_benchmark_path(d, model, seed, k)) for k in results.kimgs]
        eval_s = sum(b["s"] for b in evals if b and "s" in b) if any(evals) else None
        peaks = [t["peak_mem_mb"] for t in ticks if t.get("peak_mem_mb") is not None]
        params = generator_parameters(options)
        row = {"Dataset": d, "Model": model_label(model), "Seed": seed, "Device": run_device(options),
               "Train s": train.get("s") if train else None, "Evaluate s": eval_s,
               "sec/kimg": median([t.get("sec_per_kimg") for t in ticks]),
               "img/s": median([t.get("img_per_sec") for t in ticks]),
               "Peak memory MB": max(peaks) if peaks else None,
               "Train max RSS MB": train.get("max_rss") if train else None,
               "G parameters": params}
        rows.append(row)
        shown.append({"Dataset": d, "Model": row["Model"], "Seed": str(seed), "Device": row["Device"] or DASH,
                      "Train": hms(row["Train s"]), "Evaluate": hms(row["Evaluate s"]),
                      "sec/kimg": show(row["sec/kimg"], 1), "img/s": show(row["img/s"], 2),
                      "Peak memory (MB)": show(row["Peak memory MB"], 0),
                      "G params (M)": DASH if params is None else f"{params / 1e6:.2f}"})
    notes = Notes()
    notes.line("one row per training run; Train and Evaluate: wall time (h:mm:ss) from Snakemake's benchmark "
               "files, both summed over the run's jobs; sec/kimg and img/s: median over the training ticks of "
               "stats.jsonl (the training jobs share the machine, so these speeds are not the attention-cost "
               "measurement: see the throughput table); G params: recorded by the training run; peak "
               "memory: the largest of the ticks (GPU memory allocated on a GPU, the process's peak RSS on a CPU)")
    notes.line(f"{DASH}: no benchmark file or stats.jsonl (the run was not made by Snakemake, or has no ticks)")
    return Table("compute", "Computational requirements of this run", pd.DataFrame(rows), pd.DataFrame(shown),
                 notes, "llrl" + "r" * 6)


def environment(results: Results) -> dict[str, Any]:
    """Software versions, devices and measurement settings, for the table and the text."""
    versions: dict[str, str] = {}
    train_devices, eval_devices, hosts, commits = set(), set(), set(), set()
    for d, model, seed in ((d, m, s) for d in results.datasets for m in results.models for s in results.seeds):
        opts = results.options(d, model, seed) or {}
        versions.update({k: str(v) for k, v in (opts.get("versions") or {}).items()})
        if (dev := run_device(opts)):
            train_devices.add(dev)
        if opts.get("host"):
            hosts.add(opts["host"])
        if opts.get("git_commit"):
            commits.add(opts["git_commit"])
    extractor, modes = {}, set()
    for m in results.measurements():
        versions.update({k: str(v) for k, v in (m.raw.get("versions") or {}).items()})
        if m.raw.get("device"):
            eval_devices.add(str(m.raw["device"]))
        extractor = m.raw.get("extractor") or extractor
        if m.raw.get("fid_mode"):
            modes.add(m.raw["fid_mode"])
    metrics = results.cfg["metrics"]
    commit = git_commit()
    return {"versions": dict(sorted(versions.items())), "train_devices": sorted(train_devices),
            "eval_devices": sorted(eval_devices), "hosts": sorted(hosts),
            "git_commit": commit, "git_commit_short": machine.short_commit(commit), "train_commits": sorted(commits),
            "extractor": extractor, "fid_modes": sorted(modes) or [metrics["fid_mode"]],
            "machine": this_machine(), "num_real": metrics["num_real"], "num_gen": metrics["num_gen"],
            "final_num_gen": metrics["final_num_gen"], "repeats": metrics["repeats"]}


def environment_table(results: Results):
    env = environment(results)
    ext = env["extractor"] or {}
    rows = [("git commit (report)", env["git_commit"]),
            ("git commit (training)", ", ".join(env["train_commits"]) or "unknown"),
            ("training device", ", ".join(env["train_devices"]) or "unknown"),
            ("evaluation device", ", ".join(env["eval_devices"]) or "unknown"),
            ("training host", ", ".join(env["hosts"]) or "unknown"),
            ("tables made on", f"{env['machine']['cpu']}, {env['machine']['cores']} cores")]
    rows += [(f"{name} version", version) for name, version in env["versions"].items()]
    rows += [("feature extractor", ext.get("name", "unknown")),
             ("extractor sha256", (ext.get("sha256") or "unknown")[:16]),
             ("FID mode", ", ".join(env["fid_modes"])), ("real images", str(env["num_real"])),
             ("generated images", f"{env['num_gen']} per checkpoint, {env['final_num_gen'] or env['num_gen']} "
                                  f"at the last"), ("training seeds", ", ".join(map(str, results.seeds))),
             ("sampling seeds at the last checkpoint", str(env["repeats"]))]
    frame = pd.DataFrame(rows, columns=["Item", "Value"])
    return Table("environment", "Software and hardware of this run", frame, frame, Notes(), "ll")
