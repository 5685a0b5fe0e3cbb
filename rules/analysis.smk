rule analysis:
    input:
        scores=f"{RESULTS}/scores/scores.parquet",
        timings=f"{RESULTS}/scores/timings.json",
        bank=f"{RESULTS}/bank/bank.npz",
        traces=[
            f"{RESULTS}/unlearn/{method}/{forget_set}/trace.parquet"
            for method, forget_set in UNLEARN_PAIRS
        ],
        evaluations=[
            f"{RESULTS}/evaluate/{method}/{forget_set}.json"
            for method, forget_set in UNLEARN_PAIRS
        ],
        manifests=[
            f"{RESULTS}/forget_sets/{forget_set}.json"
            for forget_set in FORGET_SETS
            if forget_set.startswith("es_")
        ],
        sources=sources("analysis"),
    output:
        difficulty=f"{RESULTS}/analysis/difficulty.parquet",
        agreement=f"{RESULTS}/analysis/agreement.parquet",
        factors=f"{RESULTS}/analysis/factors.parquet",
        factor_verdicts=f"{RESULTS}/analysis/factor_verdicts.parquet",
        predictor=f"{RESULTS}/analysis/predictor.json",
        findings=f"{RESULTS}/analysis/findings.json",
        figures=directory(f"{RESULTS}/analysis/figures"),
    log:
        f"{LOGS}/analysis.log",
    benchmark:
        f"{BENCH}/analysis.tsv"
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
