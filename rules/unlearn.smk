rule unlearn:
    input:
        unpack(unlearn_scores),
        **data_inputs(),
        model=f"{RESULTS}/target/model.pt",
        forget_set=f"{RESULTS}/forget_sets/{{forget_set}}.parquet",
        sources=lambda wc: sources(
            "unlearn", *_methods.modules(wc.method, config["unlearn"][wc.method])
        ),
    output:
        model=f"{RESULTS}/unlearn/{{method}}/{{forget_set}}/model.pt",
        record=f"{RESULTS}/unlearn/{{method}}/{{forget_set}}/record.json",
        trace=f"{RESULTS}/unlearn/{{method}}/{{forget_set}}/trace.parquet",
        predictions=f"{RESULTS}/unlearn/{{method}}/{{forget_set}}/predictions.parquet",
    log:
        f"{LOGS}/unlearn/{{method}}/{{forget_set}}.log",
    benchmark:
        f"{BENCH}/unlearn/{{method}}/{{forget_set}}.tsv"
    conda:
        "../envs/mudiff.yaml"
    threads: 1
    resources:
        **resources("unlearn"),
    params:
        io=io,
        job=job(
            "unlearn",
            lambda wc: {
                "hyper": method_hyper(config["unlearn"][wc.method]),
                **{k: config[k] for k in ("seed", "model", "device", "train")},
            },
        ),
    shell:
        mudiff("unlearn")
