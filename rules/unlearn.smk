rule unlearn:
    input:
        unpack(unlearn_inputs),
        model=f"{RUN}/target/model.pt",
        forget_set=f"{RUN}/forget_sets/{{forget_set}}.parquet",
        sources=lambda wc: sources(
            "unlearn", *MODEL_ENTRY.values(), *method_entries(wc.method)
        ),
    output:
        model=f"{RUN}/unlearn/{{method}}/{{forget_set}}/model.pt",
        record=f"{RUN}/unlearn/{{method}}/{{forget_set}}/record.json",
        trace=f"{RUN}/unlearn/{{method}}/{{forget_set}}/trace.parquet",
        predictions=f"{RUN}/unlearn/{{method}}/{{forget_set}}/predictions.parquet",
    log:
        f"{RUN_LOGS}/unlearn/{{method}}/{{forget_set}}.log",
    benchmark:
        f"{RUN_BENCH}/unlearn/{{method}}/{{forget_set}}.tsv"
    conda:
        "../envs/mudiff.yaml"
    threads: 1
    resources:
        **resources("unlearn"),
    params:
        io=io,
        registry=lambda wc: {"model": MODEL_ENTRY, "methods": method_entries(wc.method)},
        job=job(
            "unlearn",
            lambda wc: {
                "hyper": method_hyper(config["unlearn"][wc.method]),
                **{k: config[k] for k in ("model", "device", "train")},
            },
        ),
    shell:
        mudiff("unlearn")
