"""Tracking and data at scale: a shared MLflow server, a DVC remote (issue: scale-out).

One tiny study runs with its jobs logging to a real `mlflow server` on loopback (a database
backend and an artifact root, as a cluster's shared server would have). The same study's
prepared data then goes through a DVC remote (a local folder standing in for S3/SSH): push,
delete, pull, and Snakemake sees nothing to redo.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from studyrepo import TINY, copy_repo, snakemake, write_config

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow_server")
    port = _free_port()
    log = open(root / "server.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{root / 'server.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"mlflow server did not start:\n{(root / 'server.log').read_text()[-3000:]}")
        time.sleep(0.5)
    yield uri, root
    os.killpg(proc.pid, 15)
    proc.wait(timeout=30)
    log.close()


@pytest.fixture(scope="module")
def study(server, tmp_path_factory):
    uri, _ = server
    repo = copy_repo(tmp_path_factory.mktemp("scale") / "repo")
    config = write_config(repo, TINY)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", config],
        cwd=repo,
        env={**env, "MLFLOW_TRACKING_URI": uri},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    return repo, config


def test_every_job_logs_to_the_shared_server(server, study):
    from mlflow.tracking import MlflowClient

    uri, root = server
    repo, _ = study
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("tiny")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    # prepare_data, track_data, train_target, train_bank, the scores and forget-set jobs, 2 unlearn, 2 evaluate, report
    rules = sorted(r.data.tags["mudiff.rule"] for r in runs)
    assert rules.count("unlearn") == 2 and rules.count("evaluate") == 2 and rules.count("report") == 1
    assert {r.info.status for r in runs} == {"FINISHED"}
    # nothing went to a local store in the study folder
    assert not (repo / "mlflow.db").exists()
    # artifacts were uploaded through the server into its artifact root
    report = next(r for r in runs if r.data.tags["mudiff.rule"] == "report")
    assert "outputs" in [a.path for a in client.list_artifacts(report.info.run_id)]
    assert any((root / "artifacts").rglob("report.md"))


def test_dvc_push_delete_pull_and_nothing_reruns(study, tmp_path):
    repo, config = study
    dvc = [sys.executable, "-m", "dvc"]
    remote = tmp_path / "remote"
    subprocess.run([*dvc, "remote", "add", "--default", "shared", str(remote)], cwd=repo, check=True)
    subprocess.run([*dvc, "push", "--quiet"], cwd=repo, check=True)
    assert any(p.is_file() for p in remote.rglob("*"))
    shutil.rmtree(repo / "data")
    shutil.rmtree(repo / ".dvc" / "cache")
    subprocess.run([*dvc, "pull", "--quiet"], cwd=repo, check=True)
    assert (repo / "data" / "digits" / "arrays.npz").is_file()
    status = subprocess.run([*dvc, "status"], cwd=repo, capture_output=True, text=True, check=True)
    assert "up to date" in status.stdout
    assert "Nothing to be done" in snakemake(repo, "-n", "--configfile", config).stdout
