# The data jobs are shared by every study of the same data (their folder and params say nothing of
# the study), so a second study reuses them. track_data is a checkpoint: the jobs that read the data
# depend on its record, and Snakemake re-plans them once it has run (see data_inputs).
rule prepare_data:
    input:
        sources=sources("prepare_data", *LOADER_ENTRY.values()),
    output:
        arrays=f"{DATASET_DIR}/arrays.npz",
        manifest=f"{DATASET_DIR}/manifest.json",
    log:
        f"{DATA_LOGS}/prepare_data.log",
    benchmark:
        f"{DATA_BENCH}/prepare_data.tsv"
    conda:
        "../envs/mudiff.yaml"
    threads: 1
    resources:
        **resources("prepare_data"),
    params:
        io=io,
        job=job("prepare_data", {"data": config["data"]}, shared=True),
        registry={"loader": LOADER_ENTRY},
    shell:
        mudiff("prepare_data")


checkpoint track_data:
    input:
        arrays=f"{DATASET_DIR}/arrays.npz",
        manifest=f"{DATASET_DIR}/manifest.json",
        sources=sources("track_data"),
    output:
        record=DATA_RECORD,
    log:
        f"{DATA_LOGS}/track_data.log",
    conda:
        "../envs/mudiff.yaml"
    threads: 1
    resources:
        **resources("track_data"),
    params:
        io=io,
        job=job("track_data", {"dvc_file": DVC_FILE}, shared=True),
    shell:
        mudiff("track_data")
