"""`ganrepro tables | figures | render | compile`: the report stage's commands.

Each reads the resolved config from --config-json (what Snakemake passes) or --config FILE.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import click

from ganrepro import layout
from ganrepro.cli.app import main
from ganrepro.cli.options import DEFAULT_CONFIG, either_config

log = logging.getLogger(__name__)
DEFAULT_PUBLISHED = "config/published.yaml"


def config_options(f):
    """--config-json / --config / --results, shared by every report command."""
    @click.option("--config-json", help="The resolved config as JSON (Snakemake passes this).")
    @click.option("--config", "config_path", type=click.Path(dir_okay=False),
                  help=f"Config file instead of --config-json [default: {DEFAULT_CONFIG}].")
    @click.option("--results", "results_dir", default=layout.ROOT, show_default=True,
                  type=click.Path(file_okay=False), help="The pipeline's results folder.")
    @functools.wraps(f)
    def wrapper(config_json, config_path, results_dir, **kwargs):
        from ganrepro.report.inputs import Results

        results = Results(either_config(config_path, config_json, DEFAULT_CONFIG), results_dir)
        return f(results=results, **kwargs)
    return wrapper


def _published(path: str) -> dict:
    from ganrepro.report.inputs import load_published

    return load_published(path)


@main.command("tables")
@config_options
@click.option("--published", default=DEFAULT_PUBLISHED, show_default=True, type=click.Path(dir_okay=False),
              help="The published figures with their sources.")
@click.option("--out", type=click.Path(file_okay=False), help="Output folder [default: RESULTS/tables].")
def tables_command(results, published, out) -> None:
    """Tables (CSV + LaTeX) and the claims check from the metrics, runs and datasets."""
    from ganrepro.report.tables import write_tables

    out = Path(out or layout.tables_dir(str(results.root)))
    paths = write_tables(results, _published(published), out)
    click.echo(f"wrote {len(paths)} table files and claims.json to {out}")


@main.command("figures")
@config_options
@click.option("--out", type=click.Path(file_okay=False), help="Output folder [default: RESULTS/figures].")
def figures_command(results, out) -> None:
    """FID curves, losses, sample grids across checkpoints and attention maps (PDF + PNG)."""
    from ganrepro.report.figures import write_figures

    out = Path(out or layout.figures_dir(str(results.root)))
    write_figures(results, out)
    click.echo(f"wrote the figures to {out}")


@main.command("render")
@config_options
@click.option("--published", default=DEFAULT_PUBLISHED, show_default=True, type=click.Path(dir_okay=False))
@click.option("--template", default="report/report.tex.j2", show_default=True, type=click.Path(dir_okay=False))
@click.option("--bib", default="report/references.bib", show_default=True, type=click.Path(dir_okay=False))
@click.option("--tables", "tables_dir", type=click.Path(file_okay=False), help="[default: RESULTS/tables]")
@click.option("--figures", "figures_dir", type=click.Path(file_okay=False), help="[default: RESULTS/figures]")
@click.option("--out", type=click.Path(file_okay=False), help="Output folder [default: RESULTS/report].")
@click.option("--pdf/--no-pdf", default=False, show_default=True,
              help="Also compile the PDF with latexmk (if it is not installed: say how to get it).")
def render_command(results, published, template, bib, tables_dir, figures_dir, out, pdf) -> None:
    """Render the LaTeX report from the tables, figures and published figures."""
    from ganrepro.report import render

    root = str(results.root)
    tex = render.render(results, _published(published), template, bib, tables_dir or Path(layout.tables_dir(root)),
                        figures_dir or Path(layout.figures_dir(root)), out or Path(layout.report_dir(root)))
    click.echo(f"wrote {tex}")
    if pdf:
        if render.have_latexmk():
            click.echo(f"wrote {render.compile_pdf(tex)}")
        else:
            log.warning(render.no_tex_message(tex))


@main.command("compile")
@click.option("--tex", default=layout.report_tex(), show_default=True, type=click.Path(dir_okay=False),
              help="The rendered report.")
@click.option("--timeout", default=600, show_default=True, type=click.IntRange(1), help="Seconds latexmk may take.")
def compile_command(tex, timeout) -> None:
    """Compile the rendered report to PDF with latexmk (atomically: build folder, then move)."""
    from ganrepro.report import render

    click.echo(f"wrote {render.compile_pdf(tex, timeout)}")

