"""The report stage: tables, figures, the claims check and the LaTeX report.

    inputs.py    read what the earlier stages wrote (metrics JSON, run folders, benchmarks,
                 dataset manifests) and config/published.yaml, with clear errors
    tables.py    pandas tables -> results/tables/{name}.csv and .tex (booktabs, escaped)
    figures.py   matplotlib figures -> results/figures/*.pdf and .png (deterministic)
    claims.py    the paper's claims, each with a verdict and the numbers that decide it
    render.py    the jinja2 template -> results/report/report.tex, latexmk -> report.pdf

Its commands (`ganrepro tables | figures | render | compile`) are in ganrepro.cli.report.

This module stays light (no pandas, no matplotlib) so the Snakemake rules can import
the file names below when the DAG is built.
"""

from __future__ import annotations

from ganrepro.settings.registry import has_attention

# Tables written by `ganrepro tables`, each as results/tables/{name}.csv and {name}.tex.
TABLES = ("table1", "metrics", "noise", "throughput", "hparams", "departures", "datasets", "compute", "environment",
          "published_fid50k", "pretrained", "claims", "disentanglement")
# Side files of the tables stage read by `ganrepro render`.
TABLES_INDEX = "index.json"
CLAIMS_JSON = "claims.json"
FIGURES_INDEX = "index.json"


def study_table_name(study: str) -> str:
    """The table of one study (config `studies:`), written beside the others."""
    return f"study_{study}"


def study_figure_stem(study: str) -> str:
    return f"study_{study}"


def table_names(studies: list[str] = ()) -> list[str]:
    """Every table `ganrepro tables` writes: TABLES and one per study."""
    return list(TABLES) + [study_table_name(s) for s in studies]


def figure_files(datasets: list[str], models: list[str], studies: list[str] = ()) -> list[str]:
    """Every file `ganrepro figures` writes, relative to the figures folder."""
    out = [f"{kind}_{d}.{ext}" for d in datasets for kind in ("fid", "losses") for ext in ("pdf", "png")]
    out += [f"samples_{d}_{m}.{ext}" for d in datasets for m in models for ext in ("pdf", "png")]
    out += [f"attention_{d}_{m}.{ext}" for d in datasets for m in models if has_attention(m)
            for ext in ("pdf", "png")]
    out += [f"{study_figure_stem(s)}.{ext}" for s in studies for ext in ("pdf", "png")]
    return out + [FIGURES_INDEX]
