"""Render report/report.tex.j2 into results/report/report.tex and compile it.

The template uses LaTeX-safe jinja2 delimiters: \\VAR{expr} for values, \\BLOCK{stmt} and
lines starting with %% for statements, \\#{...} for comments. Undefined values fail
loudly (StrictUndefined): a template that names a number the pipeline did not compute
is an error, never an empty space in the PDF. Every number in the text comes from the
tables stage (index.json, claims.json), the figures stage, the metrics files or
config/published.yaml.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jinja2

from ganrepro.files import atomic_write, atomic_write_text
from ganrepro.report import CLAIMS_JSON, FIGURES_INDEX, TABLES, TABLES_INDEX, disentanglement
from ganrepro.report.environment import environment
from ganrepro.report.inputs import ReportError, Results, read_json
from ganrepro.report.studies import context as study_context
from ganrepro.settings.registry import model_label
from ganrepro.report.latex import latex_escape

log = logging.getLogger(__name__)
TEX_INSTALL = ("apt-get install --no-install-recommends latexmk texlive-latex-base texlive-latex-recommended "
               "texlive-fonts-recommended lmodern")


def make_environment(template_dir: str | Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir)),
        block_start_string=r"\BLOCK{", block_end_string="}",
        variable_start_string=r"\VAR{", variable_end_string="}",
        comment_start_string=r"\#{", comment_end_string="}",
        line_statement_prefix="%%", line_comment_prefix="%#",
        trim_blocks=True, lstrip_blocks=True, autoescape=False, keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined)
    env.filters["latex_escape"] = env.filters["e"] = latex_escape
    env.filters["num"] = _num
    env.filters["label"] = model_label
    return env


def _num(value: Any, digits: int = 2) -> str:
    """A number for the text; None is an error here (the template must test for it)."""
    if value is None or isinstance(value, jinja2.Undefined):
        raise ReportError("the report template formats a value that was not measured (None); "
                          "guard it with an if in report/report.tex.j2")
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return f"{float(value):.{digits}f}"


def _rel(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path, start)).as_posix()


def context(results: Results, published: dict[str, Any], tables_dir: Path, figures_dir: Path,
            out_dir: Path) -> dict[str, Any]:
    """Everything the template may use."""
    index = read_json(tables_dir / TABLES_INDEX, "the tables rule (ganrepro tables) writes it")
    missing = [t for t in TABLES if t not in index]
    if missing:
        raise ReportError(f"{tables_dir / TABLES_INDEX} lacks the table(s) {', '.join(missing)}; "
                          "run the tables rule (ganrepro tables) again")
    tables = {name: {"caption": entry["caption"], "path": _rel(tables_dir / entry["tex"], out_dir),
                     "rows": entry.get("rows")} for name, entry in index.items()}
    claims = read_json(tables_dir / CLAIMS_JSON, "the tables rule (ganrepro tables) writes it")
    figs = read_json(figures_dir / FIGURES_INDEX, "the figures rule (ganrepro figures) writes it")

    def fig(name: str) -> str:
        if not (figures_dir / name).exists():
            raise ReportError(f"{figures_dir / name} does not exist; run the figures rule (ganrepro figures) again")
        return _rel(figures_dir / name, out_dir)

    figures = {kind: {d: (fig(v) if isinstance(v, str) else {m: fig(f) for m, f in v.items()})
                      for d, v in per.items()} for kind, per in figs.items()}
    cfg = results.cfg
    verdicts: dict[str, int] = {}
    for c in claims:
        verdicts[c["verdict"]] = verdicts.get(c["verdict"], 0) + 1
    return {
        "datasets": [{"name": d, **results.manifest(d)} for d in results.datasets],
        "models": results.models, "kimgs": results.kimgs, "last_kimg": results.kimgs[-1],
        "train": cfg["train"], "metrics": cfg["metrics"], "seeds": results.seeds,
        # The recipe each dataset's runs used (top level, preset, the dataset's overrides).
        "recipes": {d: results.run_settings(d, results.models[0])["train"] for d in results.datasets},
        "tables": tables, "figures": figures, "claims": claims, "verdicts": verdicts,
        "published": published, "env": environment(results),
        "first_paper_kimg": min(published["paper_claims"]["checkpoints_kimg"]),
        "studies": study_context(claims, results, figures),
        "disentanglement": disentanglement.context(results),
    }


def render(results: Results, published: dict[str, Any], template: str | Path, bib: str | Path,
           tables_dir: str | Path, figures_dir: str | Path, out: str | Path) -> Path:
    """Write out/report.tex (and references.bib beside it); returns the .tex path."""
    template, out = Path(template), Path(out)
    if not template.exists():
        raise ReportError(f"{template} does not exist (report/report.tex.j2 in the repository)")
    if not Path(bib).exists():
        raise ReportError(f"{bib} does not exist (report/references.bib in the repository)")
    out.mkdir(parents=True, exist_ok=True)
    ctx = context(results, published, Path(tables_dir), Path(figures_dir), out)
    try:
        text = make_environment(template.parent).get_template(template.name).render(**ctx)
    except jinja2.UndefinedError as err:
        raise ReportError(f"{template}: {err} (the template names a value the pipeline does not provide)") from None
    except jinja2.TemplateSyntaxError as err:
        raise ReportError(f"{template} line {err.lineno}: {err.message}") from None
    tex = out / "report.tex"
    for path, content in ((tex, text), (out / "references.bib", Path(bib).read_text())):
        atomic_write_text(path, content)
    log.info("wrote %s", tex)
    return tex


def have_latexmk() -> bool:
    return shutil.which("latexmk") is not None


def no_tex_message(tex: Path) -> str:
    return (f"latexmk is not installed, so {tex.with_suffix('.pdf')} was not made; {tex} and the figures are "
            f"ready. Install TeX (Debian/Ubuntu: {TEX_INSTALL}; see the README) and run `ganrepro compile "
            f"--tex {tex}` or `snakemake report` again, or compile {tex.name} in {tex.parent} with "
            "pdflatex, bibtex, pdflatex, pdflatex")


def compile_pdf(tex: str | Path, timeout: int = 600) -> Path:
    """latexmk in a hidden build folder next to the .tex, then copy the PDF into place
    (atomically), so a failed or interrupted compile never leaves a PDF that looks complete."""
    tex = Path(tex)
    if not tex.exists():
        raise ReportError(f"{tex} does not exist; run the render_report rule (ganrepro render) first")
    if not have_latexmk():
        raise ReportError(no_tex_message(tex))
    pdf = tex.with_suffix(".pdf")
    pdf.unlink(missing_ok=True)                   # a stale PDF must not pass for this one
    build = tex.parent / ".build"
    build.mkdir(exist_ok=True)
    (build / f"{tex.stem}.pdf").unlink(missing_ok=True)
    cmd = ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", f"-outdir={build.name}", tex.name]
    log.info("compiling: %s (in %s)", " ".join(cmd), tex.parent)
    try:
        done = subprocess.run(cmd, cwd=tex.parent, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "BIBINPUTS": f".:{os.environ.get('BIBINPUTS', '')}"})
    except subprocess.TimeoutExpired:
        raise ReportError(f"latexmk did not finish {tex} within {timeout} s (log: {build / tex.stem}.log)") from None
    if done.returncode != 0 or not (build / f"{tex.stem}.pdf").exists():
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-25:])
        log.error("latexmk output (last lines):\n%s", tail)
        raise ReportError(f"latexmk failed on {tex} (exit {done.returncode}); the LaTeX log is "
                          f"{build / tex.stem}.log")
    with atomic_write(pdf) as tmp:
        shutil.copyfile(build / f"{tex.stem}.pdf", tmp)
    log.info("wrote %s", pdf)
    return pdf
