"""A study in a temporary copy of the repository, for tests that run Snakemake (not a test module).

The copy leaves out a checkout's outputs and local state, so a test starts from a fresh clone's
state whatever the developer has run; it is its own git repository (jobs tag their runs with
the commit).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
# Outputs and local state at the top of a checkout, not copied.
TOP_LEVEL_STATE = {
    "results",
    "logs",
    "benchmarks",
    "data",
    "downloads",
    ".snakemake",
    "mlflow.db",
    "mlartifacts",
    ".pytest_cache",
    "build",
    ".whl",
    ".fmnist",
    "bench_out",
}

# A study of seconds: every stage runs, on the embedded digits, with the smallest sizes. It is the
# shipped smoke study (config/smoke.yaml, read here so the two never drift), named `tiny` in the tests.
SMOKE = REPO / "config" / "smoke.yaml"
TINY = {**yaml.safe_load(SMOKE.read_text()), "name": "tiny"}


def _ignore(folder: str, names: list[str]) -> set[str]:
    skip = {n for n in names if n == "__pycache__" or n.endswith(".egg-info")}
    if Path(folder) == REPO:
        skip |= TOP_LEVEL_STATE & set(names)
    if Path(folder).name == ".dvc":
        skip |= {"cache", "tmp"}
    return skip


def copy_repo(dest: Path) -> Path:
    """A copy of the repository's files at `dest`, committed in a git repository of its own."""
    shutil.copytree(REPO, dest, ignore=_ignore, symlinks=True)
    if not (dest / ".git").exists():
        git = ["git", "-c", "user.email=test@mudiff", "-c", "user.name=test"]
        subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
        subprocess.run(["git", "add", "-A"], cwd=dest, check=True)
        subprocess.run([*git, "commit", "-qm", "test copy"], cwd=dest, check=True)
    return dest


def write_config(repo: Path, config: dict, name: str = "tiny.yaml") -> str:
    path = repo / "config" / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return f"config/{name}"


def env() -> dict[str, str]:
    """The caller's environment without MLflow overrides: a study logs to its own mlflow.db."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}


def snakemake(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", *args], cwd=cwd, env=env(), capture_output=True, text=True
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
        )
    return proc


def runs(repo: Path, study: str) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    exp = client.get_experiment_by_name(study)
    return client.search_runs([exp.experiment_id], max_results=5000) if exp else []


def job_stats(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run as {rule: count}."""
    if "Nothing to be done" in output:
        return {}
    table = output.split("Job stats:")[1].split("\n\n")[0]
    return {
        m.group(1): int(m.group(2))
        for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)
        if m.group(1) != "total"
    }


def dry_run_jobs(output: str) -> list[tuple[str, dict]]:
    """(rule, wildcards) of every job a dry run lists."""
    jobs = []
    for block in [
        b
        for kind in ("rule", "localrule", "checkpoint", "localcheckpoint")
        for b in output.split(f"\n{kind} ")[1:]
    ]:
        rule = block.split(":")[0]
        wc = re.search(r"wildcards: (.*)", block)
        wildcards = dict(kv.split("=") for kv in wc.group(1).split(", ")) if wc else {}
        jobs.append((rule, wildcards))
    return jobs
