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
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Iterator

DEFAULT_URI = "sqlite:///mlflow.db"
ARTIFACT_DIR = "mlartifacts"
MAX_ARTIFACT_MB = float(os.environ.get("MUDIFF_MAX_ARTIFACT_MB", "64"))


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
        sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def data_digest(record_file: str | Path | None) -> str:
    """The DVC digest of the job's dataset, from its record (`mudiff.data.records`)."""
    import json

    try:
        return str(json.loads(Path(record_file).read_text())["md5"])
    except (OSError, TypeError, KeyError, ValueError):
        return "untracked"


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

    def log_artifact(self, path: str | Path, subdir: str | None = None) -> None:
        path = Path(path)
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), subdir)
        elif path.stat().st_size <= MAX_ARTIFACT_MB * 2**20:
            self.client.log_artifact(self.run_id, str(path), subdir)
        else:
            self.set_tags({f"artifact_not_copied.{path.name}": f"{path} ({path.stat().st_size / 2**20:.0f} MB)"})


def close_stale_runs(client: Any, exp_id: str, name: str) -> list[str]:
    """Mark KILLED the RUNNING runs of this job left by a process that died without a word (SIGKILL,
    a lost node). Snakemake locks the working directory, so while this job runs no other copy of it can."""
    stale = _retry(lambda: client.search_runs(
        [exp_id], filter_string=f"attributes.run_name = '{name}' and attributes.status = 'RUNNING'", max_results=100))
    for run in stale:
        _retry(lambda r=run: client.set_tag(r.info.run_id, "mudiff.closed_by", "rerun of the same job: the process had died"))
        _retry(lambda r=run: client.set_terminated(r.info.run_id, "KILLED"))
    return [r.info.run_id for r in stale]


@contextlib.contextmanager
def job_run(job: dict) -> Iterator[JobRun]:
    """One MLflow run around one job; FAILED on error, KILLED on a signal, outputs logged on success."""
    client = _client()
    study = study_of(job)
    inputs = job.get("input", {})
    exp = client.get_experiment_by_name(study)
    exp_id = exp.experiment_id if exp is not None else init_store(study)
    wildcards = job.get("wildcards", {})
    name = job["rule"] + "".join(f"[{k}={v}]" for k, v in sorted(wildcards.items()))
    tags = {
        "mudiff.rule": job["rule"],
        "mudiff.study": study,
        "mudiff.git_commit": git_commit(),
        "mudiff.data_digest": data_digest(inputs.get("data_record") or inputs.get("data_version")),
        **{f"mudiff.wildcard.{k}": v for k, v in wildcards.items()},
    }
    close_stale_runs(client, exp_id, name)
    run = _retry(lambda: client.create_run(exp_id, run_name=name, tags=tags))
    jr = JobRun(client, run.info.run_id)
    jr.log_params({**job.get("params", {}), **({"replicate_seed": job["seed"]} if "seed" in job else {})})

    def on_signal(signum, frame):
        raise Killed(signal.Signals(signum).name)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    status = "FAILED"
    try:
        if "data_record" in job.get("input", {}):  # the job reads a prepared dataset: check it is the recorded one
            from mudiff.data.records import verify

            record = verify(job["input"]["data_record"])
            jr.set_tags({"mudiff.data_digest": record["md5"], "mudiff.data_path": record["path"]})
        yield jr
        for path in job.get("output", {}).values():
            if Path(path).exists():
                jr.log_artifact(path, "outputs")
        status = "FINISHED"
    except Killed:
        status = "KILLED"
        raise
    except Exception as err:
        _retry(lambda: jr.set_tags({"mudiff.error": f"{type(err).__name__}: {err}"[:5000]}))
        raise
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        _retry(lambda: client.set_terminated(jr.run_id, status))
