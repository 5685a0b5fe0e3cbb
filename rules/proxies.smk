rule proxies:
    input:
        scores=f"{RESULTS}/scores/scores.parquet",
        timings=f"{RESULTS}/scores/timings.json",
        sources=sources("proxies"),
    output:
        table=f"{RESULTS}/proxies/proxies.parquet",
        csv=f"{RESULTS}/proxies/proxies.csv",
        figure=f"{RESULTS}/proxies/proxies_vs_memorization.png",
    log:
        f"{LOGS}/proxies.log",
    benchmark:
        f"{BENCH}/proxies.tsv"
    conda:
        "../envs/mudiff.yaml"
    threads: 1
    resources:
        **resources("proxies"),
    params:
        io=io,
        job=job("proxies", {"top_share": 0.05}),
    shell:
        mudiff("proxies")
