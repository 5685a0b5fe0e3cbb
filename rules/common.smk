# Shared helpers: config validation, paths, the job description every rule passes to its
# stage, and each stage's source files (so that code changes rerun exactly that stage).
import json
import re
import os
import sys
from pathlib import Path

SRC = str(Path(workflow.basedir) / "workflow")
sys.path.insert(0, SRC)
# Jobs find the package through the environment, not through their command: a command holding the
# checkout's path would change with it, and Snakemake would rerun every job of a moved checkout.
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        [SRC, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    )
)

from mudiff import forget_sets as _forget_sets
from mudiff.__main__ import STAGES
from mudiff.config import (
    ConfigError,
    bank_section,
    dataset_dir,
    method_hyper,
    unlearn_pairs,
    validate,
)
from mudiff import methods as _methods
from mudiff.data.facts import facts as dataset_facts
from mudiff.data.records import DVC_FILE, record_path
from mudiff.data.registry import LOADERS as _LOADERS
from mudiff.models.registry import MODELS as _MODELS
from mudiff.scores import FROM_BANK as _FROM_BANK
from mudiff.scores import modules as _score_modules
from mudiff.sources import module_files, module_of
from mudiff.tracking import ARTIFACTS_ENV, invocation_env

try:
    _validated = validate(dict(config))
except ConfigError as err:
    raise WorkflowError(str(err)) from None
config.clear()
config.update(_validated)

STUDY = config["name"]
# The MLflow experiment of the data jobs, which every study shares; this `snakemake` call's id, which
# every run of its jobs is tagged with (kept where a cluster job parses the Snakefile again); what
# the runs keep of their outputs. None of it is a job's param: changing it reruns nothing.
os.environ.update(
    MUDIFF_STUDY=STUDY,
    **invocation_env(),
    **{ARTIFACTS_ENV: json.dumps(config["tracking"], sort_keys=True)},
)
# How many GPU jobs this Snakemake runs at once (`--resources gpu=N`; unset: no bound), for the jobs'
# share of the GPUs: each CUDA job claims a GPU of its own on this machine (mudiff.device.pick; the
# variable is mudiff.device.SLOTS_ENV), since Snakemake hands out counts, not device ids.
# Snakemake 9 gives a Resource, whose value is None when unset.
_GPU_JOBS = workflow.global_resources.get("gpu")
_GPU_JOBS = getattr(_GPU_JOBS, "value", _GPU_JOBS)
os.environ.update(MUDIFF_GPU_SLOTS=str(_GPU_JOBS or ""))
SEEDS = config["seeds"]
RESULTS = f"results/{STUDY}"
LOGS = f"logs/{STUDY}"
BENCH = f"benchmarks/{STUDY}"
# One replicate of the study per seed: every stage from target training to analysis runs under
# these (the {seed} wildcard); data is shared, and the report aggregates over the seeds.
RUN = f"{RESULTS}/seed_{{seed}}"
RUN_LOGS = f"{LOGS}/seed_{{seed}}"
RUN_BENCH = f"{BENCH}/seed_{{seed}}"
DATA_ROOT = config["data"]["root"]
# data/<dataset>, plus the digits split and the `data.train_size` subset when not the defaults (e.g.
# data/fashion_mnist-n10000-seed0): each kind of data keeps its own folder, its own entry of data.dvc and its
# own record, so studies of different data never touch each other's, and a data change reruns all in one pass.
DATASET_DIR = f"{DATA_ROOT}/{dataset_dir(config['data'])}"
DATA_RECORD = str(record_path(DATASET_DIR))
# The data jobs' logs and benchmarks are the dataset's, not the study's (a benchmark is an output).
DATA_LOGS = f"logs/data/{dataset_dir(config['data'])}"
DATA_BENCH = f"benchmarks/data/{dataset_dir(config['data'])}"
# The registry entries this study runs, by name: the jobs that run them depend on their modules and
# track the entries as params (registries name their members as strings; see mudiff.sources).
MODEL_ENTRY = {config["model"]: _MODELS[config["model"]]}
# The bank's section as its jobs get it, its architecture named (`bank.model`, null: the study's model),
# and that architecture's entry: a bank of another architecture depends on that model's module.
BANK = bank_section(config)
BANK_MODEL_ENTRY = {BANK["model"]: _MODELS[BANK["model"]]}
LOADER_ENTRY = {config["data"]["dataset"]: _LOADERS[config["data"]["dataset"]]}
FORGET_SETS = _forget_sets.names(config["forget_sets"])
METHOD_NAMES = list(config["unlearn"])
BANK_SCORES = [s for s in config["scores"]["names"] if s in _FROM_BANK]
TARGET_SCORES = [s for s in config["scores"]["names"] if s not in _FROM_BANK]
# The score-registry entries each score job runs (its sources depend on those modules only).
TARGET_SCORE_ENTRY = _score_modules(TARGET_SCORES)
BANK_SCORE_ENTRY = _score_modules(BANK_SCORES)
REPORT = f"{RESULTS}/report.md"
# The committed table that chose the study's method settings (python -m mudiff.tuning), if any.
TUNING = config["tune"]["table"] or f"config/tuning/{STUDY}.csv"


UNLEARN_PAIRS = unlearn_pairs(config)  # (method, forget set) of every unlearn job


# Method names may hold a colon (meta-algorithms, e.g. `rum_f:neggrad_plus`); paths keep it as is.
wildcard_constraints:
    seed=r"\d+",
    method="|".join(re.escape(m) for m in METHOD_NAMES),
    forget_set="|".join(FORGET_SETS),


# What a job asks the scheduler for (local `--resources`, or the Slurm plugin's sbatch options).
# Sizes grow with the dataset; `gpu` is 1 for the stages that train or run models, unless the
# study runs on the CPU (`device: cpu`). Override any of it with --set-resources RULE:KEY=VALUE.
_SCALE = dataset_facts(config["data"]["dataset"]).scale
_GPU = 0 if config["device"] == "cpu" else 1
_RESOURCES = (
    {  # rule: (mem_mb per scale unit, runtime in minutes per scale unit, uses a GPU)
        "prepare_data": (1000, 10, False),
        "track_data": (1000, 10, False),
        "train_target": (2000, 15, True),
        "train_bank": (4000, 60, True),
        "merge_bank": (1000, 5, False),
        "scores_target": (2000, 20, True),
        "scores_bank": (2000, 10, True),
        "scores": (1000, 5, False),
        "proxies": (1000, 5, False),
        "forget_set": (1000, 5, False),
        "unlearn": (2000, 30, True),
        "evaluate": (1000, 5, False),
        "analysis": (2000, 20, False),
        "report": (1000, 10, False),
    }
)


def resources(rule_name):
    """The `resources:` of a rule: memory, wall time and GPUs (see _RESOURCES)."""
    mem_mb, runtime, gpu = _RESOURCES[rule_name]
    return {
        "mem_mb": mem_mb * _SCALE,
        "runtime": runtime * _SCALE,
        "gpu": _GPU if gpu else 0,
    }


def sources(stage, *modules):
    """The package files a stage's job runs: the stage module's import closure, plus the modules it
    runs by a registry's name (relative paths, so that a moved checkout reruns nothing).
    """
    files = set(module_files("mudiff.__main__")) | set(module_files(STAGES[stage]))
    for module in modules:
        files |= set(module_files(module_of(module)))
    return sorted(os.path.relpath(f) for f in files)


def per_seed(path):
    """`path` inside a replicate's folder, for every seed of the study (in config order)."""
    return [f"{RESULTS}/seed_{seed}/{path}" for seed in SEEDS]


def unlearn_scores(wildcards):
    """The scores table, for the meta-algorithms that refine F by a score (vanilla methods do not wait on it)."""
    if _methods.needs_scores(wildcards.method):
        return {"scores": f"{RUN.format(seed=wildcards.seed)}/scores/scores.parquet"}
    return {}


def tuning_input():
    """The study's tuning table, for the report, when the study has one."""
    return {"tuning": TUNING} if os.path.exists(TUNING) else {}


def method_entries(method):
    """The method-registry entries an unlearn job runs (its meta-algorithm's and every method it calls)."""
    return _methods.modules(method, config["unlearn"][method])


def data_inputs(wildcards):
    """Prepared data, for a job that reads it: the dataset's record (written by the checkpoint
    track_data) carries its content; the files themselves are ancient. Snakemake re-plans the jobs
    after the checkpoint has run, so identical data prepared again (a lost folder, a new checkout,
    prepare's code edited) reruns nothing, and changed data reruns every job that reads it, in the
    same pass. The job checks the files against the record before it reads them."""
    return {
        "arrays": ancient(f"{DATASET_DIR}/arrays.npz"),
        "data_manifest": ancient(f"{DATASET_DIR}/manifest.json"),
        "data_record": checkpoints.track_data.get().output.record,
    }


def data_version(wildcards):
    """The dataset's record alone, for a job that does not read the data but follows from it: every
    job depends on the checkpoint, so Snakemake re-plans every job once it has run (a job planned
    before that, on an input that was then left as it was, would otherwise keep its stale reason).
    """
    return {"data_version": checkpoints.track_data.get().output.record}


def unlearn_inputs(wildcards):
    """An unlearn job's data, and the scores table for the meta-algorithms that refine F by a score."""
    return {**data_inputs(wildcards), **unlearn_scores(wildcards)}


def job(rule_name, params=None, shared=False):
    """A params function: the JSON job description (rule, wildcards, params) the stage receives.
    It reads wildcards only, so Snakemake tracks its value: a changed value reruns the job.
    A replicate's jobs also get its seed (the {seed} wildcard) as `seed`. A `shared` job (the data
    jobs, shared by every study of a dataset) leaves the study out, so another study reruns nothing.
    """

    def describe(wildcards):
        values = params(wildcards) if callable(params) else (params or {})
        seed = {"seed": int(wildcards.seed)} if "seed" in wildcards.keys() else {}
        return json.dumps(
            {
                "rule": rule_name,
                **({} if shared else {"study": STUDY}),
                **seed,
                "wildcards": dict(wildcards.items()),
                "params": values,
            },
            sort_keys=True,
        )

    return describe


def io(wildcards, input, output):
    """A params function: the job's named input and output paths, and its source files (which its
    run records with their digests), as JSON (derived from the rule, so never a reason to rerun).
    """
    return json.dumps(
        {
            "input": {k: v for k, v in input.items() if k != "sources"},
            "output": dict(output.items()),
            "sources": list(input.get("sources", [])),
        }
    )


def mudiff(stage):
    """The shell command of a stage: its log captures stdout and stderr (progress bars included).
    `exec` makes the job Snakemake's own child, so it dies with Snakemake (mudiff.__main__).
    """
    return (
        f"OMP_NUM_THREADS={{threads}} exec "
        f"python -m mudiff {stage} --job {{params.job:q}} --io {{params.io:q}} > {{log:q}} 2>&1"
    )


# Before the first job: the MLflow store and experiment, once; and, where jobs run on this machine,
# the fork server that starts them warm (mudiff.forkserver; MUDIFF_FORKSERVER=off to do without).
onstart:
    from mudiff import forkserver
    from mudiff.tracking import init_store, tracking_uri

    init_store(STUDY)
    if workflow.local_exec:
        os.environ.update(forkserver.start())
    print(
        f"mudiff: MLflow store {tracking_uri()}, experiment '{STUDY}'",
        file=sys.stderr,
    )


# The end of a successful run: the headline ToW table, the report, the audit and how to open MLflow.
onsuccess:
    from mudiff import forkserver
    from mudiff.audit import finished_summary

    forkserver.stop()
    print(finished_summary(RESULTS), file=sys.stderr)


onerror:
    from mudiff import forkserver

    forkserver.stop()
