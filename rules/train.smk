rule train_target:
    input:
        **data_inputs(),
        sources=sources("train"),
    output:
        model=f"{RESULTS}/target/model.pt",
        dynamics=f"{RESULTS}/target/dynamics.parquet",
        metrics=f"{RESULTS}/target/metrics.json",
        checkpoints=f"{RESULTS}/target/checkpoints.pt",
    log:
        f"{LOGS}/train_target.log",
    benchmark:
        f"{BENCH}/train_target.tsv"
    conda:
        "../envs/mudiff.yaml"
    threads: 2
    resources:
        **resources("train_target"),
    params:
        io=io,
        job=job(
            "train_target",
            {k: config[k] for k in ("seed", "model", "device", "train")},
        ),
    shell:
        mudiff("train")
