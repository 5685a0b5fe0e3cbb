rule train_bank:
    input:
        **data_inputs(),
        sources=sources("bank"),
    output:
        bank=f"{RESULTS}/bank/bank.npz",
        summary=f"{RESULTS}/bank/summary.json",
    log:
        f"{LOGS}/train_bank.log",
    benchmark:
        f"{BENCH}/train_bank.tsv"
    conda:
        "../envs/mudiff.yaml"
    threads: 2
    resources:
        **resources("train_bank"),
    params:
        io=io,
        job=job(
            "train_bank", {k: config[k] for k in ("seed", "model", "device", "bank")}
        ),
    shell:
        mudiff("bank")
