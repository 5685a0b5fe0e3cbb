rule analysis:
    input:
        unpack(data_version),
        scores=f"{RUN}/scores/scores.parquet",
        timings=f"{RUN}/scores/timings.json",
        bank=f"{RUN}/bank/bank.npz",
        traces=[
            f"{RUN}/unlearn/{method}/{forget_set}/trace.parquet"
            for method, forget_set in UNLEARN_PAIRS
        ],
        evaluations=[
            f"{RUN}/evaluate/{method}/{forget_set}.json"
            for method, forget_set in UNLEARN_PAIRS
        ],
        manifests=[f"{RUN}/forget_sets/{forget_set}.json" for forget_set in FORGET_SETS],
        sources=sources("analysis"),
    output:
        difficulty=f"{RUN}/analysis/difficulty.parquet",
        agreement=f"{RUN}/analysis/agreement.parquet",
        factors=f"{RUN}/analysis/factors.parquet",
        factor_verdicts=f"{RUN}/analysis/factor_verdicts.parquet",
        predictor=f"{RUN}/analysis/predictor.json",
        findings=report(
            f"{RUN}/analysis/findings.json",
            caption="captions/analysis_findings.rst",
            category="Analysis",
            subcategory="seed {seed}",
        ),
        figures=report(
            directory(f"{RUN}/analysis/figures"),
            patterns=["{name}.png"],
            caption="captions/analysis_figures.rst",
            category="Analysis",
            subcategory="seed {seed}",
        ),
    log:
        f"{RUN_LOGS}/analysis.log",
    benchmark:
        f"{RUN_BENCH}/analysis.tsv"
    conda:
        "../envs/mudiff.yaml"
    threads: 2
    resources:
        **resources("analysis"),
    params:
        io=io,
        job=job("analysis", {"analysis": config["analysis"]}),
    shell:
        mudiff("analysis")
