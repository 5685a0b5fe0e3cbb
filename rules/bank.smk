# The bank in `bank.shards` jobs, one per contiguous share of its K models (mudiff.sections.BankConfig
# .shard_models), which merge_bank joins into the one bank the scores read.
rule train_bank:
    input:
        unpack(data_inputs),
        sources=sources("train_bank", *BANK_MODEL_ENTRY.values()),
    output:
        bank=f"{RUN}/bank/shards/{{shard}}.npz",
        summary=f"{RUN}/bank/shards/{{shard}}.json",
    log:
        f"{RUN_LOGS}/train_bank/{{shard}}.log",
    benchmark:
        f"{RUN_BENCH}/train_bank/{{shard}}.tsv"
    wildcard_constraints:
        shard=r"\d+",
    conda:
        "../envs/mudiff.yaml"
    threads: 2
    resources:
        **resources("train_bank"),
    params:
        io=io,
        registry={"model": BANK_MODEL_ENTRY},
        job=job(
            "train_bank",
            lambda wildcards: {
                "device": config["device"],
                "bank": BANK,
                "shard": int(wildcards.shard),
            },
        ),
    shell:
        mudiff("train_bank")


rule merge_bank:
    input:
        unpack(data_version),
        shards=expand(
            f"{RUN}/bank/shards/{{shard}}.npz",
            shard=range(BANK["shards"]),
            allow_missing=True,
        ),
        shard_summaries=expand(
            f"{RUN}/bank/shards/{{shard}}.json",
            shard=range(BANK["shards"]),
            allow_missing=True,
        ),
        sources=sources("merge_bank"),
    output:
        bank=f"{RUN}/bank/bank.npz",
        summary=f"{RUN}/bank/summary.json",
    log:
        f"{RUN_LOGS}/merge_bank.log",
    benchmark:
        f"{RUN_BENCH}/merge_bank.tsv"
    conda:
        "../envs/mudiff.yaml"
    threads: 1
    resources:
        **resources("merge_bank"),
    params:
        io=io,
        job=job("merge_bank", {"bank": BANK}),
    shell:
        mudiff("merge_bank")
