rule train_target:
    input:
        unpack(data_inputs),
        sources=sources("train_target", *MODEL_ENTRY.values()),
    output:
        model=f"{RUN}/target/model.pt",
        dynamics=f"{RUN}/target/dynamics.parquet",
        metrics=f"{RUN}/target/metrics.json",
        checkpoints=f"{RUN}/target/checkpoints.pt",
    log:
        f"{RUN_LOGS}/train_target.log",
    benchmark:
        f"{RUN_BENCH}/train_target.tsv"
    conda:
        "../envs/mudiff.yaml"
    threads: 2
    resources:
        **resources("train_target"),
    params:
        io=io,
        registry={"model": MODEL_ENTRY},
        job=job(
            "train_target",
            {k: config[k] for k in ("model", "device", "train")},
        ),
    shell:
        mudiff("train_target")
