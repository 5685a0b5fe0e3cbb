rule forget_set:
    input:
        scores=f"{RESULTS}/scores/scores.parquet",
        embeddings=f"{RESULTS}/scores/embeddings.npz",
        sources=sources("forget_set"),
    output:
        ids=f"{RESULTS}/forget_sets/{{forget_set}}.parquet",
        manifest=f"{RESULTS}/forget_sets/{{forget_set}}.json",
    log:
        f"{LOGS}/forget_set/{{forget_set}}.log",
    benchmark:
        f"{BENCH}/forget_set/{{forget_set}}.tsv"
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
