rule train_target:
    input:
        **data_inputs(),
        sources=sources("train"),
    output:
        model=f"{RESULTS}/target/model.pt",
        dynamics=f"{RESULTS}/target/dynamics.parquet",
        metrics=f"{RESULTS}/target/metrics.json",
    params:
        job=job(
            "train_target",
            {k: config[k] for k in ("seed", "model", "device", "train")},
        ),
    log:
        f"{LOGS}/train_target.log",
    benchmark:
        f"{BENCH}/train_target.tsv"
    threads: 2
    shell:
        mudiff("train")
