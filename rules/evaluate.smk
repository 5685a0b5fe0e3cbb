rule evaluate:
    input:
        unpack(data_version),
        forget_set=f"{RUN}/forget_sets/{{forget_set}}.parquet",
        predictions=f"{RUN}/unlearn/{{method}}/{{forget_set}}/predictions.parquet",
        record=f"{RUN}/unlearn/{{method}}/{{forget_set}}/record.json",
        trace=f"{RUN}/unlearn/{{method}}/{{forget_set}}/trace.parquet",
        retrain_predictions=f"{RUN}/unlearn/retrain/{{forget_set}}/predictions.parquet",
        retrain_record=f"{RUN}/unlearn/retrain/{{forget_set}}/record.json",
        sources=sources("evaluate"),
    output:
        metrics=f"{RUN}/evaluate/{{method}}/{{forget_set}}.json",
    log:
        f"{RUN_LOGS}/evaluate/{{method}}/{{forget_set}}.log",
    benchmark:
        f"{RUN_BENCH}/evaluate/{{method}}/{{forget_set}}.tsv"
    conda:
        "../envs/mudiff.yaml"
    threads: 1
    resources:
        **resources("evaluate"),
    params:
        io=io,
        job=job("evaluate", {"evaluate": config["evaluate"]}),
    shell:
        mudiff("evaluate")
