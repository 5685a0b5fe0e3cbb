rule proxies:
    input:
        unpack(data_version),
        scores=f"{RUN}/scores/scores.parquet",
        timings=f"{RUN}/scores/timings.json",
        sources=sources("proxies"),
    output:
        table=f"{RUN}/proxies/proxies.parquet",
        csv=report(
            f"{RUN}/proxies/proxies.csv",
            caption="captions/proxies_table.rst",
            category="Proxies",
            subcategory="seed {seed}",
        ),
        figure=report(
            f"{RUN}/proxies/proxies_vs_memorization.png",
            caption="captions/proxies_figure.rst",
            category="Proxies",
            subcategory="seed {seed}",
        ),
    log:
        f"{RUN_LOGS}/proxies.log",
    benchmark:
        f"{RUN_BENCH}/proxies.tsv"
    conda:
        "../envs/mudiff.yaml"
    threads: 1
    resources:
        **resources("proxies"),
    params:
        io=io,
        job=job("proxies"),
    shell:
        mudiff("proxies")
