rule evaluate:
    input:
        forget_set=f"{RESULTS}/forget_sets/{{forget_set}}.parquet",
        predictions=f"{RESULTS}/unlearn/{{method}}/{{forget_set}}/predictions.parquet",
        record=f"{RESULTS}/unlearn/{{method}}/{{forget_set}}/record.json",
        retrain_predictions=f"{RESULTS}/unlearn/retrain/{{forget_set}}/predictions.parquet",
        retrain_record=f"{RESULTS}/unlearn/retrain/{{forget_set}}/record.json",
        sources=sources("evaluate"),
    output:
        metrics=f"{RESULTS}/evaluate/{{method}}/{{forget_set}}.json",
    log:
        f"{LOGS}/evaluate/{{method}}/{{forget_set}}.log",
    benchmark:
        f"{BENCH}/evaluate/{{method}}/{{forget_set}}.tsv"
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
