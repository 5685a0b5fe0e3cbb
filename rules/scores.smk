# Scores are split by what they need: the target-only ones do not wait for the bank.
rule scores_target:
    input:
        unpack(data_inputs),
        model=f"{RUN}/target/model.pt",
        dynamics=f"{RUN}/target/dynamics.parquet",
        checkpoints=f"{RUN}/target/checkpoints.pt",
        sources=sources(
            "scores_target", *MODEL_ENTRY.values(), *TARGET_SCORE_ENTRY.values()
        ),
    output:
        scores=f"{RUN}/scores/target.parquet",
        embeddings=f"{RUN}/scores/embeddings.npz",
        timings=f"{RUN}/scores/target_timings.json",
    log:
        f"{RUN_LOGS}/scores_target.log",
    benchmark:
        f"{RUN_BENCH}/scores_target.tsv"
    conda:
        "../envs/mudiff.yaml"
    threads: 2
    resources:
        **resources("scores_target"),
    params:
        io=io,
        registry={"model": MODEL_ENTRY, "scores": TARGET_SCORE_ENTRY},
        job=job(
            "scores_target",
            {
                **{k: config[k] for k in ("model", "device")},
                "scores": {**config["scores"], "names": TARGET_SCORES},
            },
        ),
    shell:
        mudiff("scores_target")


rule scores_bank:
    input:
        unpack(data_inputs),
        model=f"{RUN}/target/model.pt",
        bank=f"{RUN}/bank/bank.npz",
        bank_summary=f"{RUN}/bank/summary.json",
        sources=sources(
            "scores_bank", *MODEL_ENTRY.values(), *BANK_SCORE_ENTRY.values()
        ),
    output:
        scores=f"{RUN}/scores/bank.parquet",
        timings=f"{RUN}/scores/bank_timings.json",
    log:
        f"{RUN_LOGS}/scores_bank.log",
    benchmark:
        f"{RUN_BENCH}/scores_bank.tsv"
    conda:
        "../envs/mudiff.yaml"
    threads: 1
    resources:
        **resources("scores_bank"),
    params:
        io=io,
        registry={"model": MODEL_ENTRY, "scores": BANK_SCORE_ENTRY},
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
        unpack(data_version),
        target_scores=f"{RUN}/scores/target.parquet",
        target_timings=f"{RUN}/scores/target_timings.json",
        bank_scores=f"{RUN}/scores/bank.parquet",
        bank_timings=f"{RUN}/scores/bank_timings.json",
        sources=sources("scores"),
    output:
        scores=f"{RUN}/scores/scores.parquet",
        timings=f"{RUN}/scores/timings.json",
    log:
        f"{RUN_LOGS}/scores.log",
    benchmark:
        f"{RUN_BENCH}/scores.tsv"
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
