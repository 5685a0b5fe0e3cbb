rule report:
    input:
        evaluations=expand(
            f"{RESULTS}/evaluate/{{method}}/{{forget_set}}.json",
            zip,
            method=[m for m, _ in UNLEARN_PAIRS],
            forget_set=[fs for _, fs in UNLEARN_PAIRS],
        ),
        manifests=expand(
            f"{RESULTS}/forget_sets/{{forget_set}}.json", forget_set=FORGET_SETS
        ),
        forget_sets=expand(
            f"{RESULTS}/forget_sets/{{forget_set}}.parquet", forget_set=FORGET_SETS
        ),
        scores=f"{RESULTS}/scores/scores.parquet",
        timings=f"{RESULTS}/scores/timings.json",
        proxies=f"{RESULTS}/proxies/proxies.parquet",
        agreement=f"{RESULTS}/analysis/agreement.parquet",
        factor_verdicts=f"{RESULTS}/analysis/factor_verdicts.parquet",
        predictor=f"{RESULTS}/analysis/predictor.json",
        findings=f"{RESULTS}/analysis/findings.json",
        analysis_figures=f"{RESULTS}/analysis/figures",
        proxies_figure=f"{RESULTS}/proxies/proxies_vs_memorization.png",
        bank_summary=f"{RESULTS}/bank/summary.json",
        target_metrics=f"{RESULTS}/target/metrics.json",
        data_manifest=ancient(f"{DATASET_DIR}/manifest.json"),
        sources=sources("report"),
    output:
        report=REPORT,
        html=f"{RESULTS}/report.html",
        evaluation=f"{RESULTS}/evaluation.parquet",
        figures=directory(f"{RESULTS}/figures"),
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
        job=job(
            "report",
            {"study": {k: config[k] for k in ("name", "seed", "model")}},
        ),
    shell:
        mudiff("report")
