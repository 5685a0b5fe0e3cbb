"""Nothing lost, nothing trusted blindly: interruptions, dead jobs, GPU requirements, shell
injection, determinism. (Bad config, data, forget sets and model files: test_config.py,
test_data.py, test_forget_sets.py, test_io.py.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from studyrepo import TINY, copy_repo, env, runs, snakemake, write_config
from tinydata import cpu, separable

from mudiff import forget_sets
from mudiff.bank import train_bank
from mudiff.config import BankConfig
from mudiff.device import DeviceError, choice_note, pick
from mudiff.models import build
from mudiff.scores.memorization import memorization
from mudiff.training import Dynamics, Recipe, fit

# ------------------------------------------------------------------------------------ MLflow runs


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    from mudiff.tracking import _client, init_store

    return _client(), init_store("s")


def test_run_of_a_job_that_died_is_closed_by_its_rerun_within_its_scope(store, tmp_path):
    import socket

    from mudiff.tracking import invocation, job_run

    client, exp_id = store
    here = invocation()
    host = socket.gethostname()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a Snakemake that has exited: its pid is free
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:

        def started(**scope):
            return client.create_run(
                exp_id, run_name="train_bank", tags={"mudiff.rule": "train_bank", **here, **scope}
            )

        dead_here = started()  # an earlier attempt in this invocation, SIGKILLed: never closed
        dead_before = started(**{"mudiff.invocation": "old", "mudiff.invoker": f"{host}:{gone.pid}:"})
        live = started(
            **{"mudiff.invocation": "live", "mudiff.invoker": f"{host}:{alive.pid}:"}
        )  # e.g. --nolock
        other_checkout = started(**{"mudiff.workdir": str(tmp_path / "someone-else")})  # a shared store
        other_host = started(**{"mudiff.invocation": "theirs", "mudiff.invoker": "elsewhere:1:"})
        untagged = client.create_run(exp_id, run_name="train_bank")  # no scope: not known to be ours
        other_job = client.create_run(exp_id, run_name="train_target", tags=here)  # another job's run
        with job_run({"rule": "train_bank", "study": "s", "params": {"k": 1}}):
            pass
    finally:
        alive.kill()
    status = {
        r: client.get_run(r.info.run_id).info.status
        for r in (dead_here, dead_before, live, other_checkout, other_host, untagged, other_job)
    }
    assert status[dead_here] == status[dead_before] == "KILLED"
    assert "same invocation" in client.get_run(dead_here.info.run_id).data.tags["mudiff.closed_by"]
    assert f"pid {gone.pid}) is gone" in client.get_run(dead_before.info.run_id).data.tags["mudiff.closed_by"]
    assert all(status[r] == "RUNNING" for r in (live, other_checkout, other_host, untagged, other_job))
    statuses = sorted(
        r.info.status for r in client.search_runs([exp_id], "attributes.run_name = 'train_bank'")
    )
    assert statuses == ["FINISHED", "KILLED", "KILLED", "RUNNING", "RUNNING", "RUNNING", "RUNNING"]


def test_failed_job_run_is_failed_and_says_why(store):
    from mudiff.tracking import job_run

    client, exp_id = store
    with pytest.raises(ValueError, match="broken input"):
        with job_run({"rule": "scores", "study": "s", "params": {}}):
            raise ValueError("broken input")
    (run,) = client.search_runs([exp_id])
    assert run.info.status == "FAILED"
    assert run.data.tags["mudiff.error"] == "ValueError: broken input"


def test_prepare_with_missing_source_writes_nothing(store, tmp_path):
    from mudiff.stages import prepare_data as prepare

    out = {
        "arrays": str(tmp_path / "data" / "arrays.npz"),
        "manifest": str(tmp_path / "data" / "manifest.json"),
    }
    job = {
        "rule": "prepare_data",
        "study": "s",
        "wildcards": {},
        "input": {},
        "output": out,
        "params": {
            "data": {
                "dataset": "fashion_mnist",
                "source": str(tmp_path / "nowhere"),
                "root": "data",
                "download_dir": str(tmp_path / "dl"),
                "test_fraction": 0.2,
                "split_seed": 0,
            }
        },
    }
    with pytest.raises(FileNotFoundError, match="nowhere"):
        prepare.run(job)
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())


# ----------------------------------------------------------------------------------------- device


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_required_without_a_gpu_is_refused_naming_the_key():
    with pytest.raises(
        DeviceError, match=r"config key 'device' is 'cuda' but no CUDA device is visible.*device: auto"
    ):
        pick("cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_auto_falls_back_to_cpu_and_says_so():
    device = pick("auto")
    assert device.type == "cpu"
    assert "CPU fallback" in choice_note("auto", device)


# ---------------------------------------------------------------------------------- determinism


def _scores_and_sets(seed: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    data = separable(n_train=48, n_test=16, seed=0, flip=4).to(cpu())
    dyn = Dynamics(4, 48, data.device)
    fit(
        build("mlp", data.shape, 2, seed=seed),
        data,
        torch.arange(48),
        Recipe(4, 16, 0.05, schedule="cosine"),
        seed=seed,
        dynamics=dyn,
    )
    bank = train_bank(data, "mlp", BankConfig(models=8, epochs=2, batch_size=16), seed=seed)
    mem = memorization(bank.mask, bank.correct_train)
    confidence = dyn.numpy()["p_y"].mean(0)
    table = pd.DataFrame({"id": np.arange(48), "memorization": mem, "confidence": confidence})
    sets = {
        name: forget_sets.build(name, table, size=6, seed=seed)[0]
        for name in ("random", "memorization_high", "confidence_mix")
    }
    return mem, confidence, sets


def test_same_seed_gives_bit_identical_scores_and_forget_sets_on_cpu():
    mem1, conf1, sets1 = _scores_and_sets(seed=1)
    mem2, conf2, sets2 = _scores_and_sets(seed=1)
    assert mem1.tobytes() == mem2.tobytes() and conf1.tobytes() == conf2.tobytes()
    for name in sets1:
        assert sets1[name].tobytes() == sets2[name].tobytes(), name


def test_another_seed_gives_other_scores_and_forget_sets():
    mem1, conf1, sets1 = _scores_and_sets(seed=1)
    mem2, conf2, sets2 = _scores_and_sets(seed=2)
    assert not np.array_equal(conf1, conf2)
    assert not np.array_equal(mem1, mem2)
    assert not np.array_equal(sets1["random"], sets2["random"])


# ------------------------------------------------------------------------- through the pipeline


@pytest.mark.e2e
def test_config_values_cannot_inject_shell_commands(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    evil = "x'; touch PWNED1; echo '\" $(touch PWNED2) `touch PWNED3` ; touch PWNED4 #"
    config = write_config(
        repo,
        {**TINY, "name": "evil", "model": "smallcnn", "data": {"dataset": "fashion_mnist", "source": evil}},
        "evil.yaml",
    )
    proc = snakemake(repo, "--cores", "1", "--configfile", config, check=False)
    assert proc.returncode != 0
    assert not list(repo.rglob("PWNED*")) and not list(Path.cwd().glob("PWNED*"))
    log = (repo / "logs" / "data" / "fashion_mnist" / "prepare_data.log").read_text()  # the dataset's log
    assert "data.source: local folder" in log and "does not exist" in log and "$(touch PWNED2)" in log
    assert not (repo / "data" / "fashion_mnist" / "arrays.npz").exists()


@pytest.mark.e2e
def test_ctrl_c_during_the_bank_kills_its_run_and_the_rerun_completes(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    config = write_config(repo, {**TINY, "bank": {"models": 16, "epochs": 60}})
    args = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", config]
    with open(tmp_path / "first.log", "w") as log:
        proc = subprocess.Popen(
            args, cwd=repo, env=env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        bank_log = repo / "logs" / "tiny" / "seed_0" / "train_bank" / "0.log"  # its one shard
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if bank_log.is_file() and "model-epoch" in bank_log.read_text():
                break
            time.sleep(0.5)
        assert proc.poll() is None, "the pipeline ended before the bank was under way"
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal: the whole foreground group
        assert proc.wait(timeout=120) != 0
    bank = [r for r in runs(repo, "tiny") if r.data.tags["mudiff.rule"] == "train_bank"]
    assert [r.info.status for r in bank] == ["KILLED"]
    assert not (repo / "results" / "tiny" / "seed_0" / "bank" / "bank.npz").exists()

    snakemake(repo, "--cores", "2", "--configfile", config)
    assert (repo / "results" / "tiny" / "report.md").is_file()
    statuses = {}
    for r in runs(repo, "tiny"):
        statuses.setdefault(r.data.tags["mudiff.rule"], []).append(r.info.status)
    assert sorted(statuses["train_bank"]) == ["FINISHED", "KILLED"]
    assert all(set(s) == {"FINISHED"} for rule, s in statuses.items() if rule != "train_bank"), statuses
    assert len(statuses["unlearn"]) == len(statuses["evaluate"]) == 2  # one run per job, none lost
    assert "Nothing to be done" in snakemake(repo, "-n", "--configfile", config).stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_gpu_refusal_is_the_failed_runs_recorded_error(store, tmp_path):
    from mudiff.stages import train_target as train

    client, exp_id = store
    job = {
        "rule": "train_target",
        "study": "s",
        "wildcards": {},
        "input": {"arrays": str(tmp_path / "none.npz")},
        "seed": 0,
        "output": {},
        "params": {"device": "cuda", "model": "mlp", "train": {}},
    }
    with pytest.raises(DeviceError):
        train.run(job)
    (run,) = client.search_runs([exp_id])
    assert run.info.status == "FAILED"
    assert run.data.tags["mudiff.error"].startswith("DeviceError: config key 'device' is 'cuda'")
