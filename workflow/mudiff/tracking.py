"""The one MLflow helper: every pipeline job is one run, tagged so that every number is traceable.

A job's run carries tags (rule, wildcards, study, git commit, data digest, device), the job's
params, its metrics and its output files as artifacts. The store defaults to
`sqlite:///mlflow.db` in the working directory with artifacts under `mlartifacts/`;
`MLFLOW_TRACKING_URI` overrides it. The store and the experiment are created once, before any
job starts (`python -m mudiff init`, run by the Snakefile's `onstart`): SQLite stores raced by
several first jobs fail on schema creation.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import posixpath
import re
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

DEFAULT_URI = "sqlite:///mlflow.db"
ARTIFACT_DIR = "mlartifacts"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


def _retry(fn: Callable[[], Any], attempts: int = 8) -> Any:
    """SQLite allows one writer at a time: retry the rare write that meets a held lock."""
    for i in range(attempts):
        try:
            return fn()
        except Exception as err:  # MlflowException wraps sqlalchemy's OperationalError
            if "locked" not in str(err).lower() or i == attempts - 1:
                raise
            time.sleep(0.2 * 2**i)


def _client():
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri())


def init_store(experiment: str) -> str:
    """Create the store's schema and the experiment if missing; return the experiment id."""
    client = _client()
    exp = client.get_experiment_by_name(experiment)
    if exp is not None:
        return exp.experiment_id
    location = None
    if tracking_uri().startswith("sqlite:"):
        location = Path(ARTIFACT_DIR).resolve().as_uri()
    return client.create_experiment(experiment, artifact_location=location)


def run(job: dict) -> None:
    """Stage entry point of `python -m mudiff init`."""
    print(f"MLflow store {tracking_uri()}, experiment '{job['study']}' id {init_store(job['study'])}")


def git_commit() -> str:
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_commit(tags: dict) -> str:
    """The git commit a run ran at: MLflow's standard tag, else mudiff's (without its `-dirty`)."""
    return tags.get("mlflow.source.git.commit") or tags.get("mudiff.git_commit", "unknown").removesuffix(
        "-dirty"
    )


def study_of(job: dict) -> str:
    """The job's study (its MLflow experiment). Data jobs are shared by every study of their dataset, so
    their description leaves the study out (a second study would rerun them): the running Snakemake's
    study then comes from the environment (MUDIFF_STUDY, set by the Snakefile)."""
    return job.get("study") or os.environ.get("MUDIFF_STUDY") or "default"


def mlflow_key(key: str) -> str:
    """A param or metric name MLflow accepts: a method variant's `@` becomes `/` (no method name holds
    one, so names stay distinct), any other character MLflow refuses becomes `_`."""
    return re.sub(r"[^\w\-. :/]", "_", key.replace("@", "/"))


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one level of dotted keys, each a name MLflow accepts."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = mlflow_key(f"{prefix}{k}")
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


class Killed(BaseException):
    """Raised in a job that receives SIGTERM or SIGINT, so its run is marked KILLED."""


# ----------------------------------------------------------------------------- invocations

INVOCATION_ENV = "MUDIFF_INVOCATION"  # one id per `snakemake` call, shared by all of its jobs
INVOKER_ENV = "MUDIFF_INVOKER"  # host:pid:start of the Snakemake process that made that id


def _process_start(pid: int) -> str:
    """The start time of a process, in clock ticks since boot (Linux), so a reused pid is told apart; '' elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            text = fh.read().decode(errors="replace")
        return text[text.rindex(")") + 2 :].split()[19]
    except (OSError, ValueError, IndexError):
        return ""


def invocation_env(environ: dict | None = None) -> dict[str, str]:
    """The environment that names this Snakemake invocation, for the Snakefile to set: a fresh id and
    this process as its invoker, unless the environment already names one (a job of a cluster
    executor parses the Snakefile again, and inherits the submitting Snakemake's)."""
    environ = os.environ if environ is None else environ
    if environ.get(INVOCATION_ENV):
        return {}
    return {
        INVOCATION_ENV: uuid.uuid4().hex,
        INVOKER_ENV: f"{socket.gethostname()}:{os.getpid()}:{_process_start(os.getpid())}",
    }


_STANDALONE = invocation_env({})  # a job run outside Snakemake (a test, a notebook) is its own invocation


def invocation() -> dict[str, str]:
    """The invocation's id and invoker, and where this job runs: the scope of its runs (`is_stale`)."""
    env = os.environ if os.environ.get(INVOCATION_ENV) else _STANDALONE
    return {
        "mudiff.invocation": env[INVOCATION_ENV],
        "mudiff.invoker": env.get(INVOKER_ENV, ""),
        "mudiff.host": socket.gethostname(),
        "mudiff.workdir": str(Path.cwd().resolve()),
    }


def _alive(pid: str, start: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:  # another user's process
        pass
    return not start or _process_start(int(pid)) == start


def is_stale(tags: dict, here: dict) -> str | None:
    """Why a RUNNING run of this job (its tags) was left by a process that died, or None where it may
    still be running. Only runs of this checkout and of an invocation from this host are judged:
    another person's runs in a shared store, or this checkout's from another machine, are never touched.
    Of those: an earlier attempt in this invocation is dead (Snakemake runs one copy of a job at a
    time); one of another invocation is dead when that Snakemake is (checked where it ran; from a
    cluster node, Snakemake's lock on the working directory rules out a second live invocation)."""
    if tags.get("mudiff.workdir") != here["mudiff.workdir"]:
        return None
    if tags.get("mudiff.invocation") == here["mudiff.invocation"]:
        return "an earlier attempt of this job in the same invocation"
    host, _, rest = tags.get("mudiff.invoker", "").partition(":")
    pid, _, start = rest.partition(":")
    if not host or host != here["mudiff.invoker"].partition(":")[0]:
        return None
    if host == socket.gethostname() and _alive(pid, start):
        return None
    return f"its Snakemake ({host}, pid {pid}) is gone"


def close_stale_runs(client: Any, exp_id: str, name: str, here: dict) -> list[str]:
    """Mark KILLED the RUNNING runs of this job left by a process that died without a word (SIGKILL,
    a lost node), within this job's scope (`is_stale`); return their ids."""
    found = _retry(
        lambda: client.search_runs(
            [exp_id],
            filter_string=f"attributes.run_name = '{name}' and attributes.status = 'RUNNING'",
            max_results=1000,
        )
    )
    closed = []
    for run in found:
        why = is_stale(run.data.tags, here)
        if why is None:
            print(
                f"MLflow: left RUNNING run {run.info.run_id} of this job alone: it is not this checkout's, "
                "or its Snakemake may still run it",
                flush=True,
            )
            continue
        _retry(
            lambda r=run, w=why: client.set_tag(
                r.info.run_id, "mudiff.closed_by", f"rerun of the same job: {w}"
            )
        )
        _retry(lambda r=run: client.set_terminated(r.info.run_id, "KILLED"))
        closed.append(run.info.run_id)
    return closed


# ----------------------------------------------------------------------------- what a run records

OUTPUTS_ARTIFACT = "mudiff/outputs.json"  # every output file: path, sha256, bytes, and its artifact (or none)
SOURCES_ARTIFACT = "mudiff/sources.json"  # the job's source files and their sha256 (the code digest's parts)
INPUTS_ARTIFACT = "mudiff/inputs.json"  # every input file that records a run: path -> that run's id
ARTIFACTS_ENV = "MUDIFF_ARTIFACTS"  # the study's `tracking` section, as JSON (set by the Snakefile)
MODEL_SUFFIXES = (".pt",)


def sha256(path: str | Path) -> str:
    from mudiff.io import digest

    return digest(path, "sha256")


def code_digest(files: dict[str, str]) -> str:
    """One digest of a job's source files ({path: sha256}), independent of their order."""
    return hashlib.sha256("".join(f"{p}\0{d}\n" for p, d in sorted(files.items())).encode()).hexdigest()


def source_digests(paths: list[str]) -> dict[str, str]:
    return {str(p): sha256(p) for p in paths}


def artifact_policy() -> dict:
    """The study's artifact policy (`tracking` in the config): model files by reference or copied,
    and the size above which any other output is recorded by reference only."""
    from mudiff.sections import TrackingConfig

    return dataclasses.asdict(TrackingConfig(**json.loads(os.environ.get(ARTIFACTS_ENV) or "{}")))


def output_files(outputs: dict) -> list[tuple[str, Path, str]]:
    """(output name, file, artifact path) of every file a job wrote, folders walked (temporary files left out)."""
    from mudiff.io import is_temporary

    files = []
    for name, path in outputs.items():
        path = Path(path)
        if path.is_dir():
            for f in sorted(p for p in path.rglob("*") if p.is_file() and not is_temporary(p)):
                files.append(
                    (name, f, posixpath.join("outputs", path.name, *f.relative_to(path).parent.parts))
                )
        elif path.is_file():
            files.append((name, path, "outputs"))
    return files


def dataset_input(record: dict, context: str) -> Any:
    """The MLflow dataset input of a job's data (its record, `mudiff.data.records`): named after its folder,
    with its DVC digest (a search by `dataset.digest` finds every run of that data) and its source
    (folder, data.dvc, origin)."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    manifest_file = Path(record["path"]) / "manifest.json"
    manifest = json.loads(manifest_file.read_text()) if manifest_file.exists() else {}
    source = {
        "path": record["path"],
        "dvc_file": record["dvc_file"],
        "dataset": manifest.get("dataset"),
        "origin": manifest.get("source"),
        "split": manifest.get("split"),
    }
    profile = {k: manifest[k] for k in ("n_train", "n_test", "num_classes", "shape") if k in manifest}
    dataset = Dataset(
        name=Path(record["path"]).name,
        digest=record["md5"],
        source_type="dvc",
        source=json.dumps(source, sort_keys=True),
        profile=json.dumps(profile, sort_keys=True),
    )
    return DatasetInput(dataset, tags=[InputTag("mlflow.data.context", context)])


class JobRun:
    """The MLflow run of one job. Metrics and params are sent in batches."""

    def __init__(self, client: Any, run_id: str):
        self.client = client
        self.run_id = run_id

    def log_params(self, params: dict) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in flatten(params).items()]
        for i in range(0, len(items), 100):
            _retry(lambda chunk=items[i : i + 100]: self.client.log_batch(self.run_id, params=chunk))

    def log_metrics(self, metrics: dict, step: int = 0) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in flatten(metrics).items() if v is not None]
        for i in range(0, len(items), 500):
            _retry(lambda chunk=items[i : i + 500]: self.client.log_batch(self.run_id, metrics=chunk))

    def set_tags(self, tags: dict) -> None:
        from mlflow.entities import RunTag

        _retry(lambda: self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()]))

    def log_dataset(self, record: dict, context: str) -> None:
        """Log the dataset of a record (`dataset_input`) as this run's input, and tag its digest and folder."""
        self.set_tags({"mudiff.data_digest": record["md5"], "mudiff.data_path": record["path"]})
        _retry(lambda: self.client.log_inputs(self.run_id, datasets=[dataset_input(record, context)]))

    def log_dict(self, obj: Any, artifact_file: str) -> None:
        _retry(lambda: self.client.log_dict(self.run_id, obj, artifact_file))

    def log_artifact(self, path: str | Path, subdir: str | None = None) -> None:
        path = Path(path)
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), subdir)
        else:
            self.client.log_artifact(self.run_id, str(path), subdir)

    def log_timing(self, work_began: float, work_ended: float, logged: float) -> dict:
        """A job's time in three parts: its fixed cost (from its process's start until its own work
        began: the interpreter, imports, the MLflow run's set-up), its work, and recording its outputs.
        As metrics `job.startup_s`, `job.work_s`, `job.record_s` and one `mudiff.timing` line in its log
        (bench/benchmark.py --study tabulates them); the start-up is missing outside a pipeline job."""
        from mudiff.jobclock import job_started, launch

        started = job_started()
        timing = {
            "startup_s": None if started is None else round(work_began - started, 3),
            "work_s": round(work_ended - work_began, 3),
            "record_s": round(logged - work_ended, 3),
            "launch": launch(),
        }
        self.log_metrics({f"job.{k}": v for k, v in timing.items() if k != "launch"})
        self.set_tags({"mudiff.launch": timing["launch"]})
        print(f"mudiff.timing {json.dumps(timing)}", flush=True)
        return timing

    def log_outputs(self, outputs: dict, policy: dict | None = None) -> dict:
        """Record every output file (path, sha256, size) in OUTPUTS_ARTIFACT, copying into the artifact store
        those the policy copies: models when `models: copy`, anything else up to `max_artifact_mb`."""
        policy = policy or artifact_policy()
        manifest = {}
        for name, file, subdir in output_files(outputs):
            size = file.stat().st_size
            model = file.suffix in MODEL_SUFFIXES
            copy = policy["models"] == "copy" if model else size <= policy["max_artifact_mb"] * 2**20
            if copy:
                self.log_artifact(file, subdir)
            manifest[os.path.normpath(file).replace(os.sep, "/")] = {
                "output": name,
                "sha256": sha256(file),
                "bytes": size,
                "artifact": posixpath.join(subdir, file.name) if copy else None,
            }
        self.log_dict(manifest, OUTPUTS_ARTIFACT)
        referenced = sum(e["artifact"] is None for e in manifest.values())
        self.set_tags({"mudiff.outputs": len(manifest), "mudiff.outputs_by_reference": referenced})
        return manifest


def input_runs(inputs: dict) -> dict[str, str]:
    """The run behind each input file that records one (JSON objects and tables of earlier jobs): path -> run id."""
    from mudiff.io import run_id_of

    found = {}
    for name, paths in inputs.items():
        if name == "sources":
            continue
        for path in [paths] if isinstance(paths, str) else list(paths):
            run_id = run_id_of(path) if Path(path).is_file() else None
            if run_id:
                found[str(path)] = run_id
    return found


@contextlib.contextmanager
def job_run(job: dict) -> Iterator[JobRun]:
    """One MLflow run around one job; FAILED on error, KILLED on a signal, outputs recorded on success.

    The run carries MLflow's standard context tags (user, source, git commit: `resolve_tags`), mudiff's
    own (rule, study, wildcards, data digest, code digest, invocation, host, working directory), the
    job's dataset as an MLflow dataset input, its params, the runs of its inputs (INPUTS_ARTIFACT),
    and its outputs' checksums (OUTPUTS_ARTIFACT). Every JSON object or table the job writes records
    the run's id (`mudiff.io.current_run`)."""
    from mlflow.tracking.context.registry import resolve_tags

    from mudiff.io import current_run

    client = _client()
    study = study_of(job)
    inputs = job.get("input", {})
    exp = client.get_experiment_by_name(study)
    exp_id = exp.experiment_id if exp is not None else init_store(study)
    wildcards = job.get("wildcards", {})
    name = job["rule"] + "".join(f"[{k}={v}]" for k, v in sorted(wildcards.items()))
    here = invocation()
    record_file = inputs.get("data_record") or inputs.get("data_version")
    # "input": the job reads the data (verified below); "upstream": it follows from it
    record = json.loads(Path(record_file).read_text()) if record_file and Path(record_file).exists() else None
    sources = source_digests(job.get("sources", []))
    tags = resolve_tags(
        {
            "mudiff.rule": job["rule"],
            "mudiff.study": study,
            "mudiff.git_commit": git_commit(),
            "mudiff.data_digest": record["md5"] if record else "untracked",
            "mudiff.code_digest": code_digest(sources),
            **here,
            **{f"mudiff.wildcard.{k}": v for k, v in wildcards.items()},
        }
    )
    close_stale_runs(client, exp_id, name, here)
    run = _retry(lambda: client.create_run(exp_id, run_name=name, tags=tags))
    jr = JobRun(client, run.info.run_id)
    jr.log_params({**job.get("params", {}), **({"replicate_seed": job["seed"]} if "seed" in job else {})})
    jr.log_dict(sources, SOURCES_ARTIFACT)

    def on_signal(signum, frame):
        raise Killed(signal.Signals(signum).name)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    status = "FAILED"
    try:
        if "data_record" in inputs:  # the job reads a prepared dataset: check it is the recorded one
            from mudiff.data.records import verify

            verify(inputs["data_record"])
        if record:
            jr.log_dataset(record, "input" if "data_record" in inputs else "upstream")
        upstream = input_runs(inputs)
        jr.log_dict(upstream, INPUTS_ARTIFACT)
        jr.set_tags({"mudiff.input_runs": len(set(upstream.values()))})
        work_began = time.time()
        with current_run(jr.run_id):
            yield jr
        work_ended = time.time()
        jr.log_outputs(job.get("output", {}))
        jr.log_timing(work_began, work_ended, time.time())
        status = "FINISHED"
    except Killed:
        status = "KILLED"
        raise
    except Exception as err:
        error = f"{type(err).__name__}: {err}"[:5000]
        _retry(lambda: jr.set_tags({"mudiff.error": error}))
        raise
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        _retry(lambda: client.set_terminated(jr.run_id, status))
