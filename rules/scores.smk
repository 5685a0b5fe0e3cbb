# Scores are split by what they need: the target-only ones do not wait for the bank.
rule scores_target:
    input:
        **data_inputs(),
        model=f"{RESULTS}/target/model.pt",
        dynamics=f"{RESULTS}/target/dynamics.parquet",
        checkpoints=f"{RESULTS}/target/checkpoints.pt",
        sources=sources("scores_target"),
    output:
        scores=f"{RESULTS}/scores/target.parquet",
        embeddings=f"{RESULTS}/scores/embeddings.npz",
        timings=f"{RESULTS}/scores/target_timings.json",
    log:
        f"{LOGS}/scores_target.log",
    benchmark:
        f"{BENCH}/scores_target.tsv"
    conda:
        "../envs/mudiff.yaml"
    threads: 2
    resources:
        **resources("scores_target"),
    params:
        io=io,
        job=job(
            "scores_target",
            {
                **{k: config[k] for k in ("seed", "model", "device")},
                "scores": {**config["scores"], "names": TARGET_SCORES},
            },
        ),
    shell:
        mudiff("scores_target")


rule scores_bank:
    input:
        **data_inputs(),
        model=f"{RESULTS}/target/model.pt",
        bank=f"{RESULTS}/bank/bank.npz",
        bank_summary=f"{RESULTS}/bank/summary.json",
        sources=sources("scores_bank"),
    output:
        scores=f"{RESULTS}/scores/bank.parquet",
        timings=f"{RESULTS}/scores/bank_timings.json",
    log:
        f"{LOGS}/scores_bank.log",
    benchmark:
        f"{BENCH}/scores_bank.tsv"
    conda:
        "../envs/mudiff.yaml"
    threads: 1
    resources:
        **resources("scores_bank"),
    params:
        io=io,
        job=job(
            "scores_bank",
            {
                **{k: config[k] for k in ("model", "device")},
                "scores": {"names": BANK_SCORES},
            },
        ),
    shell:
        mudiff("scores_bank")


rule scores:
    input:
        target_scores=f"{RESULTS}/scores/target.parquet",
        target_timings=f"{RESULTS}/scores/target_timings.json",
        bank_scores=f"{RESULTS}/scores/bank.parquet",
        bank_timings=f"{RESULTS}/scores/bank_timings.json",
        sources=sources("scores"),
    output:
        scores=f"{RESULTS}/scores/scores.parquet",
        timings=f"{RESULTS}/scores/timings.json",
    log:
        f"{LOGS}/scores.log",
    benchmark:
        f"{BENCH}/scores.tsv"
    conda:
        "../envs/mudiff.yaml"
    threads: 1
    resources:
        **resources("scores"),
    params:
        io=io,
        job=job("scores", {"names": config["scores"]["names"]}),
    shell:
        mudiff("scores")
