rule evaluate:
    input:
        **data_inputs(),
        forget_set=f"{RESULTS}/forget_sets/{{forget_set}}.parquet",
        model=f"{RESULTS}/unlearn/{{method}}/{{forget_set}}/model.pt",
        record=f"{RESULTS}/unlearn/{{method}}/{{forget_set}}/record.json",
        retrain_model=f"{RESULTS}/unlearn/retrain/{{forget_set}}/model.pt",
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
    params:
        io=io,
        job=job("evaluate", {k: config[k] for k in ("model", "device", "evaluate")}),
    shell:
        mudiff("evaluate")
