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
        [report(f"results/tables/{name}.csv", caption=caption("tables"), category="Tables") for name in TABLES],
        expand("results/tables/{name}.tex", name=TABLES),
        index=f"results/tables/{TABLES_INDEX}",
        claims=f"results/tables/{CLAIMS_JSON}",
    params:
        cfg=config_json,
    log:
        "results/logs/report/tables.log",
    localrule: True
    shell:
        "ganrepro tables --config-json {params.cfg:q} --results results --published {input.published:q}"
        " --out results/tables > {log} 2>&1"


rule figures:
    input:
        **report_inputs(),
    output:
        [figure_output(name) for name in figure_files(DATASETS, MODELS)],
    params:
        cfg=config_json,
    log:
        "results/logs/report/figures.log",
    localrule: True
    shell:
        "ganrepro figures --config-json {params.cfg:q} --results results --out results/figures > {log} 2>&1"


rule render_report:
    input:
        rules.tables.output,
        rules.figures.output,
        published=repo_file("config/published.yaml"),
        template=repo_file("report/report.tex.j2"),
        bib=repo_file("report/references.bib"),
    output:
        tex="results/report/report.tex",
        bib="results/report/references.bib",
    params:
        cfg=config_json,
    log:
        "results/logs/report/render_report.log",
    localrule: True
    shell:
        "ganrepro render --config-json {params.cfg:q} --results results --published {input.published:q}"
        " --template {input.template:q} --bib {input.bib:q} --out results/report > {log} 2>&1"


rule compile_pdf:
    input:
        rules.render_report.output,
        rules.tables.output,
        rules.figures.output,
        tex="results/report/report.tex",
    output:
        report("results/report/report.pdf", caption=caption("pdf"), category="Report"),
    log:
        "results/logs/report/compile_pdf.log",
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

        logger.warning(no_tex_message(Path("results/report/report.tex")))
