rule train_bank:
    input:
        **data_inputs(),
        sources=sources("bank"),
    output:
        bank=f"{RESULTS}/bank/bank.npz",
        summary=f"{RESULTS}/bank/summary.json",
    params:
        job=job("train_bank", {k: config[k] for k in ("seed", "model", "device", "bank")}),
    log:
        f"{LOGS}/train_bank.log",
    benchmark:
        f"{BENCH}/train_bank.tsv"
    threads: 2
    shell:
        mudiff("bank")
