# Stage 4: tables, figures and the LaTeX report -> results/tables/, results/figures/,
# results/report/report.tex and, when a TeX engine is installed, report.pdf.
# The rules run on the submitting machine (localrule): they are light, and on a cluster
# the login node is where TeX usually is. Outputs marked report(...) also go into
# Snakemake's own HTML report: `snakemake --report results/report.html` after a run.
rule tables:
    input:
        **report_inputs(),
        pretrained=pretrained_metrics(),
        published=repo_file("config/published.yaml"),
    output:
        [report(layout.table(f"{name}.csv"), caption=caption("tables"), category="Tables") for name in TABLE_NAMES],
        [layout.table(f"{name}.tex") for name in TABLE_NAMES],
        index=layout.table(TABLES_INDEX),
        claims=layout.table(CLAIMS_JSON),
    params:
        cfg=config_json,
        results=subpath(output.index, ancestor=2),
        out=subpath(output.index, parent=True),
    log:
        layout.log("report", "tables"),
    localrule: True
    shell:
        "ganrepro tables --config-json {params.cfg:q} --results {params.results:q} --published {input.published:q}"
        " --out {params.out:q} > {log} 2>&1"


rule figures:
    input:
        **report_inputs(),
    output:
        [figure_output(name) for name in figure_files(DATASETS, MODELS, STUDIES)],
    params:
        cfg=config_json,
        results=lambda w, output: str(Path(output[0]).parent.parent),
        out=lambda w, output: str(Path(output[0]).parent),
    log:
        layout.log("report", "figures"),
    localrule: True
    shell:
        "ganrepro figures --config-json {params.cfg:q} --results {params.results:q} --out {params.out:q}"
        " > {log} 2>&1"


rule render_report:
    input:
        rules.tables.output,
        rules.figures.output,
        published=repo_file("config/published.yaml"),
        template=repo_file("report/report.tex.j2"),
        bib=repo_file("report/references.bib"),
    output:
        tex=layout.report_tex(),
        bib=layout.report_bib(),
    params:
        cfg=config_json,
        results=subpath(output.tex, ancestor=2),
        out=subpath(output.tex, parent=True),
    log:
        layout.log("report", "render_report"),
    localrule: True
    shell:
        "ganrepro render --config-json {params.cfg:q} --results {params.results:q} --published {input.published:q}"
        " --template {input.template:q} --bib {input.bib:q} --out {params.out:q} > {log} 2>&1"


rule compile_pdf:
    input:
        rules.render_report.output,
        rules.tables.output,
        rules.figures.output,
        tex=layout.report_tex(),
    output:
        report(layout.report_pdf(), caption=caption("pdf"), category="Report"),
    log:
        layout.log("report", "compile_pdf"),
    localrule: True
    shell:
        # Fails with a message saying how to install TeX when latexmk is missing.
        "ganrepro compile --tex {input.tex:q} > {log} 2>&1"


rule report:
    # The target users name (`snakemake report`). Nothing to run: it names the report's files.
    input:
        report_targets(),
    localrule: True


onsuccess:
    if not HAVE_LATEXMK:
        from ganrepro.report.render import no_tex_message

        logger.warning(no_tex_message(Path(layout.report_tex())))
