rule forget_set:
    input:
        unpack(data_version),
        scores=f"{RUN}/scores/scores.parquet",
        embeddings=f"{RUN}/scores/embeddings.npz",
        sources=sources("forget_set"),
    output:
        ids=f"{RUN}/forget_sets/{{forget_set}}.parquet",
        manifest=f"{RUN}/forget_sets/{{forget_set}}.json",
    log:
        f"{RUN_LOGS}/forget_set/{{forget_set}}.log",
    benchmark:
        f"{RUN_BENCH}/forget_set/{{forget_set}}.tsv"
    conda:
        "../envs/mudiff.yaml"
    threads: 1
    resources:
        **resources("forget_set"),
    params:
        io=io,
        job=job(
            "forget_set",
            lambda wc: _forget_sets.params_of(wc.forget_set, config["forget_sets"]),
        ),
    shell:
        mudiff("forget_set")
