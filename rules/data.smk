rule prepare_data:
    input:
        sources=sources("prepare"),
    output:
        arrays=f"{DATASET_DIR}/arrays.npz",
        manifest=f"{DATASET_DIR}/manifest.json",
    params:
        job=job("prepare_data", {"data": config["data"]}),
    log:
        f"{LOGS}/prepare_data.log",
    benchmark:
        f"{BENCH}/prepare_data.tsv"
    threads: 1
    shell:
        mudiff("prepare")


rule track_data:
    input:
        arrays=ancient(f"{DATASET_DIR}/arrays.npz"),
        manifest=ancient(f"{DATASET_DIR}/manifest.json"),
        sources=sources("track"),
    output:
        dvc=DVC_FILE,
    params:
        job=job("track_data", {"root": DATA_ROOT}),
    log:
        f"{LOGS}/track_data.log",
    threads: 1
    shell:
        mudiff("track")
