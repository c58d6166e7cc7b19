"""The report's figures: vector PDF for LaTeX and PNG for a quick look.

    fid_{dataset}          FID vs kimg, every model on one plot: a thin line per training seed,
                           the mean over seeds with a band of ± one sd
    losses_{dataset}       G and D losses vs kimg from stats.jsonl, every training run
    samples_{dataset}_{m}  the fixed-latent grid across checkpoints, one row per kimg
    attention_{dataset}_{m}  GANformer: where latents attend, at the last checkpoint

Files are deterministic: no creation date in the PDF, no software tag in the PNG, and
raster strips composed pixel-exactly with PIL.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from ganrepro.files import atomic_write, atomic_write_text  # noqa: E402
from ganrepro.images import save_png  # noqa: E402
from ganrepro.protocol import count_suffix  # noqa: E402
from ganrepro.report import FIGURES_INDEX, study_figure_stem  # noqa: E402
from ganrepro.report.inputs import Results, ReportError  # noqa: E402
from ganrepro.settings.registry import MODELS, has_attention, model_label  # noqa: E402
from ganrepro.settings.studies import FRACTION  # noqa: E402

log = logging.getLogger(__name__)
PDF_META = {"CreationDate": None, "Producer": None, "Creator": None}
PNG_META = {"Software": None}
STYLE = {name: (entry.color, entry.marker) for name, entry in MODELS.items()}


def _save(fig, out: Path, stem: str, dpi: int = 150) -> list[Path]:
    paths = []
    for ext, meta in (("pdf", PDF_META), ("png", PNG_META)):
        path = out / f"{stem}.{ext}"
        try:
            with atomic_write(path) as tmp:
                fig.savefig(tmp, format=ext, metadata=meta, dpi=dpi, bbox_inches="tight")
        except BaseException:
            plt.close(fig)
            raise
        paths.append(path)
    plt.close(fig)
    return paths


def _runs_and_mean(ax, runs: list[list[tuple[float, float]]], model: str) -> bool:
    """Draw one model's runs (each a list of (x, value)) as thin lines, and at each x the mean
    over the runs bold with a band of ± one standard deviation over them; False when no run
    has a value."""
    color, marker = STYLE.get(model, (None, "o"))
    per_x: dict[float, list[float]] = {}
    for points in runs:
        if points:
            ax.plot(*zip(*points), color=color, linewidth=0.6, alpha=0.45)
        for x, v in points:
            per_x.setdefault(x, []).append(v)
    if not per_x:
        return False
    xs = sorted(per_x)
    means = np.array([np.mean(per_x[x]) for x in xs])
    sds = np.array([np.std(per_x[x], ddof=1) if len(per_x[x]) > 1 else 0.0 for x in xs])
    n = min(len(v) for v in per_x.values())
    ax.plot(xs, means, marker=marker, color=color, linewidth=1.6, markersize=4,
            label=f"{model_label(model)} (mean of {n})")
    if n > 1:
        ax.fill_between(xs, means - sds, means + sds, color=color, alpha=0.15, linewidth=0)
    return True


def _legend_or_nothing(ax, plotted: int) -> None:
    if plotted:
        ax.legend(frameon=False, fontsize=8)
    else:
        ax.text(0.5, 0.5, "FID was not measured", ha="center", va="center", transform=ax.transAxes)


def fid_figure(results: Results, dataset: str, out: Path) -> list[Path]:
    """FID over training: one thin line per training seed, the mean over seeds bold with a
    band of ± one standard deviation over seeds at each checkpoint."""
    suffix = count_suffix(int(results.cfg["metrics"]["num_gen"]))
    fig, ax = plt.subplots(figsize=(4.8, 3.2))
    plotted = 0
    for model in results.models:
        runs = []
        for seed in results.seeds:
            points = [(k, results.measurement(dataset, model, seed, k).get("FID", suffix)) for k in results.kimgs]
            runs.append([(k, v) for k, v in points if isinstance(v, float)])
        plotted += _runs_and_mean(ax, runs, model)
    ax.set_xlabel("kimg (thousands of real images shown to D)")
    ax.set_ylabel(f"FID{suffix} (lower is better)")
    ax.set_title(f"{dataset}: FID over training")
    ax.grid(alpha=0.3)
    _legend_or_nothing(ax, plotted)
    return _save(fig, out, f"fid_{dataset}")


def study_figure(study, out: Path) -> list[Path]:
    """One study (report.studies.Study): FID against the varied value, a thin line per
    training run and the mean over runs with a band of ± one sd, per model (the paper's
    values are in the study's table)."""
    first = study.first
    xs = list(range(len(study.points)))
    fig, ax = plt.subplots(figsize=(4.8, 3.2))
    plotted = 0
    for model in study.models:
        runs = []
        for seed in first.seeds:
            points = [(x, study.fid[p.index][model].get(seed)) for x, p in zip(xs, study.points)]
            runs.append([(x, v) for x, v in points if v is not None])
        plotted += _runs_and_mean(ax, runs, model)
    ax.set_xticks(xs, [p.label for p in study.points])
    ax.set_xlabel(first.vary.replace("_", " ") + (" of the training images" if first.vary == FRACTION else ""))
    ax.set_ylabel(f"FID{study.suffix} at {first.kimg[-1]} kimg (lower is better)")
    ax.set_title(f"study {study.name} on {first.dataset}")
    ax.grid(alpha=0.3)
    _legend_or_nothing(ax, plotted)
    return _save(fig, out, study_figure_stem(study.name))


def losses_figure(results: Results, dataset: str, out: Path) -> list[Path]:
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 2.8), sharex=True)
    for model in results.models:
        color, _ = STYLE.get(model, (None, "o"))
        for i, seed in enumerate(results.seeds):
            ticks = results.stats(dataset, model, seed)
            for ax, key in zip(axes, ("loss_G", "loss_D")):
                pts = [(t["kimg"], t[key]) for t in ticks if t.get(key) is not None]
                if pts:
                    ax.plot(*zip(*pts), color=color, label=model_label(model) if i == 0 else None,
                            linewidth=0.8, alpha=0.7)
    for ax, title in zip(axes, ("generator loss", "discriminator loss")):
        ax.set_title(title)
        ax.set_xlabel("kimg")
        ax.grid(alpha=0.3)
    if axes[0].lines:
        axes[0].legend(frameon=False, fontsize=8)
    else:
        axes[0].text(0.5, 0.5, "no stats.jsonl ticks", ha="center", va="center", transform=axes[0].transAxes)
    return _save(fig, out, f"losses_{dataset}")


def grid_strip(path: Path, grid: int, columns: int) -> np.ndarray:
    """The first row of a grid-*.png (its first `columns` samples) as an HxWxC array."""
    if not path.exists():
        raise ReportError(f"{path} does not exist; the train rule writes it with each snapshot")
    img = np.asarray(Image.open(path).convert("RGB"))
    tile = img.shape[0] // grid
    if tile * grid != img.shape[0]:
        raise ReportError(f"{path} is {img.shape[0]} px high, not a multiple of train.grid = {grid}")
    return img[:tile, : tile * min(columns, grid)]


def samples_figure(results: Results, dataset: str, model: str, out: Path, columns: int = 8) -> list[Path]:
    grid = int(results.cfg["train"]["grid"])
    seed = results.seeds[0]                  # the grids of the first training seed's run
    run = results.run_dir(dataset, model, seed)
    strips = [grid_strip(run / f"grid-{k:06d}.png", grid, columns) for k in results.kimgs]
    stacked = np.concatenate(strips, axis=0)
    png = out / f"samples_{dataset}_{model}.png"
    save_png(stacked, png)                              # exact pixels, no metadata
    tile = strips[0].shape[0]
    fig, ax = plt.subplots(figsize=(0.75 * stacked.shape[1] / tile, 0.75 * len(strips) + 0.4))
    ax.imshow(stacked, interpolation="nearest")
    ax.set_yticks([tile * (i + 0.5) for i in range(len(strips))], [f"{k} kimg" for k in results.kimgs], fontsize=8)
    ax.set_xticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(f"{model_label(model)} on {dataset}, training seed {seed}: the same latents at each checkpoint",
                 fontsize=9)
    pdf = _save_pdf_only(fig, out, f"samples_{dataset}_{model}")
    return [pdf, png]


def _save_pdf_only(fig, out: Path, stem: str) -> Path:
    path = out / f"{stem}.pdf"
    try:
        with atomic_write(path) as tmp:
            fig.savefig(tmp, format="pdf", metadata=PDF_META, dpi=300, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def attention_figure(results: Results, dataset: str, model: str, out: Path) -> list[Path]:
    kimg = results.kimgs[-1]
    seed = results.seeds[0]
    src = results.run_dir(dataset, model, seed) / f"attention-{kimg:06d}.png"
    fig, ax = plt.subplots(figsize=(5.0, 5.0))
    ax.axis("off")
    if src.exists():
        ax.imshow(np.asarray(Image.open(src).convert("RGB")), interpolation="nearest")
        ax.set_title(f"{model_label(model)} on {dataset}, seed {seed}, {kimg} kimg: image, then four latents' attention",
                     fontsize=8)
    else:
        log.warning("%s does not exist: the attention figure says so", src)
        ax.text(0.5, 0.5, f"no attention map was written\n({src})", ha="center", va="center", fontsize=8)
    return _save(fig, out, f"attention_{dataset}_{model}", dpi=200)


def write_figures(results: Results, out: str | Path) -> dict[str, Any]:
    """Every figure of the report, plus index.json (what each file shows) in `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plt.rcParams.update({"svg.hashsalt": "ganrepro", "pdf.fonttype": 42, "font.size": 9})
    index: dict[str, Any] = {"fid": {}, "losses": {}, "samples": {}, "attention": {}}
    for d in results.datasets:
        index["fid"][d] = fid_figure(results, d, out)[0].name
        index["losses"][d] = losses_figure(results, d, out)[0].name
        index["samples"][d], index["attention"][d] = {}, {}
        for model in results.models:
            index["samples"][d][model] = samples_figure(results, d, model, out)[0].name
            if has_attention(model):
                index["attention"][d][model] = attention_figure(results, d, model, out)[0].name
    from ganrepro.report import studies

    index["studies"] = {study.name: study_figure(study, out)[0].name for study in studies.collect(results)}
    path = out / FIGURES_INDEX
    atomic_write_text(path, json.dumps(index, indent=2) + "\n")
    log.info("wrote the figures of %d dataset(s) to %s", len(results.datasets), out)
    return index
