rule scores:
    input:
        **data_inputs(),
        model=f"{RESULTS}/target/model.pt",
        dynamics=f"{RESULTS}/target/dynamics.parquet",
        bank=f"{RESULTS}/bank/bank.npz",
        bank_summary=f"{RESULTS}/bank/summary.json",
        sources=sources("scores"),
    output:
        scores=f"{RESULTS}/scores/scores.parquet",
        embeddings=f"{RESULTS}/scores/embeddings.npz",
        timings=f"{RESULTS}/scores/timings.json",
    log:
        f"{LOGS}/scores.log",
    benchmark:
        f"{BENCH}/scores.tsv"
    conda:
        "../envs/mudiff.yaml"
    threads: 1
    params:
        io=io,
        job=job("scores", {k: config[k] for k in ("model", "device", "scores")}),
    shell:
        mudiff("scores")
