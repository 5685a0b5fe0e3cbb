rule train_bank:
    input:
        unpack(data_inputs),
        sources=sources("train_bank", *MODEL_ENTRY.values()),
    output:
        bank=f"{RUN}/bank/bank.npz",
        summary=f"{RUN}/bank/summary.json",
    log:
        f"{RUN_LOGS}/train_bank.log",
    benchmark:
        f"{RUN_BENCH}/train_bank.tsv"
    conda:
        "../envs/mudiff.yaml"
    threads: 2
    resources:
        **resources("train_bank"),
    params:
        io=io,
        registry={"model": MODEL_ENTRY},
        job=job("train_bank", {k: config[k] for k in ("model", "device", "bank")}),
    shell:
        mudiff("train_bank")
