# The study's report: every replicate's results, aggregated over the seeds.
# Snakemake's own report (`snakemake --report results/<study>/snakemake-report.html`) opens with this
# description; it holds the outputs flagged report(...) below and in the other rules (flags only: no
# path changes, so they rerun nothing).
report: "captions/workflow.rst"


rule report:
    input:
        unpack(data_inputs),
        **tuning_input(),
        evaluations=[
            path
            for method, forget_set in UNLEARN_PAIRS
            for path in per_seed(f"evaluate/{method}/{forget_set}.json")
        ],
        manifests=[
            path
            for forget_set in FORGET_SETS
            for path in per_seed(f"forget_sets/{forget_set}.json")
        ],
        forget_sets=[
            path
            for forget_set in FORGET_SETS
            for path in per_seed(f"forget_sets/{forget_set}.parquet")
        ],
        scores=per_seed("scores/scores.parquet"),
        timings=per_seed("scores/timings.json"),
        proxies=per_seed("proxies/proxies.parquet"),
        agreement=per_seed("analysis/agreement.parquet"),
        factor_verdicts=per_seed("analysis/factor_verdicts.parquet"),
        predictor=per_seed("analysis/predictor.json"),
        findings=per_seed("analysis/findings.json"),
        analysis_figures=per_seed("analysis/figures"),
        proxies_figure=per_seed("proxies/proxies_vs_memorization.png"),
        bank_summary=per_seed("bank/summary.json"),
        target_metrics=per_seed("target/metrics.json"),
        difficulty=per_seed("analysis/difficulty.parquet"),
        sources=sources("report"),
    output:
        report=REPORT,
        html=report(
            f"{RESULTS}/report.html",
            caption="captions/mudiff_report.rst",
            category="mudiff report",
        ),
        evaluation=report(
            f"{RESULTS}/evaluation.parquet",
            caption="captions/evaluation.rst",
            category="Report",
            subcategory="Tables",
        ),
        summary=report(
            f"{RESULTS}/summary.parquet",
            caption="captions/summary.rst",
            category="Report",
            subcategory="Tables",
        ),
        findings=report(
            f"{RESULTS}/findings.json",
            caption="captions/findings.rst",
            category="Report",
            subcategory="Tables",
        ),
        figures=report(
            directory(f"{RESULTS}/figures"),
            patterns=["{name}.png"],
            caption="captions/report_figures.rst",
            category="Report",
            subcategory="Figures",
        ),
    log:
        f"{LOGS}/report.log",
    benchmark:
        f"{BENCH}/report.tsv"
    conda:
        "../envs/mudiff.yaml"
    threads: 1
    resources:
        **resources("report"),
    params:
        io=io,
        # the report orders the study's methods as the registry lists them
        registry={"methods": [m for m in _methods.METHODS if m in METHOD_NAMES]},
        job=job(
            "report",
            {
                "study": {k: config[k] for k in ("name", "seeds", "model")},
                "analysis": config["analysis"],
                "inert_flip_share": config["evaluate"]["inert_flip_share"],
                "tracking_ui": config["tracking"]["ui"],
                "rsu_orders": {
                    m: config["unlearn"][m]["order"]
                    for m in METHOD_NAMES
                    if _methods.split(m)[0] == "rsu"
                },
            },
        ),
    shell:
        mudiff("report")
