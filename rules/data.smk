rule prepare_data:
    input:
        sources=sources("prepare"),
    output:
        arrays=f"{DATASET_DIR}/arrays.npz",
        manifest=f"{DATASET_DIR}/manifest.json",
    log:
        f"{LOGS}/prepare_data.log",
    benchmark:
        f"{BENCH}/prepare_data.tsv"
    conda:
        "../envs/mudiff.yaml"
    threads: 1
    resources:
        **resources("prepare_data"),
    params:
        io=io,
        job=job("prepare_data", {"data": config["data"]}),
    shell:
        mudiff("prepare")


rule track_data:
    input:
        arrays=ancient(f"{DATASET_DIR}/arrays.npz"),
        manifest=ancient(f"{DATASET_DIR}/manifest.json"),
        sources=sources("track"),
    output:
        dvc=DVC_FILE,
    log:
        f"{LOGS}/track_data.log",
    conda:
        "../envs/mudiff.yaml"
    threads: 1
    resources:
        **resources("track_data"),
    params:
        io=io,
        job=job("track_data", {"root": DATA_ROOT}),
    shell:
        mudiff("track")
