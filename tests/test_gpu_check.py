"""bench/gpu_check.sh in its CPU rehearsal (--cpu-tiny), so that the GPU check cannot rot: it runs the
tiny Fashion-MNIST study and the quick benchmark and writes everything under its OUTDIR (about
2.5-4 minutes on 2 cores); and it refuses, quickly and non-zero, what it cannot run."""

from __future__ import annotations

import csv
import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu_check.sh"
FMNIST = Path("/usr/share/datasets/fashion-mnist")
STUDY = "fashion_mnist_tiny"
needs_data = pytest.mark.skipif(
    not (FMNIST / "train-images-idx3-ubyte.gz").is_file(),
    reason=f"no Fashion-MNIST files in {FMNIST} (Debian's dataset-fashion-mnist)",
)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return {**env, "MUDIFF_FASHION_MNIST": str(FMNIST), **extra}


def _run(out: Path, *args: str, timeout: int = 900, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), str(out), *args],
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check") / "out"
    proc = _run(out, "--cpu-tiny")
    assert proc.returncode == 0, f"gpu_check.sh failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    return out, proc.stdout


@pytest.mark.e2e
@needs_data
def test_every_phase_ran_and_the_summary_says_so(tiny):
    out, stdout = tiny
    phases = list(csv.DictReader(open(out / "phases.tsv"), delimiter="\t"))
    assert [p["phase"] for p in phases] == ["machine", "copy", "study", "audit", "benchmark", "collect"]
    assert all(p["status"] == "ok" for p in phases), phases
    summary = (out / "summary.txt").read_text()
    assert f"gpu_check summary: size tiny, study {STUDY}" in summary
    assert "bank_smallcnn_28_vs_tight_loop" in summary and "train_bank" in summary
    assert "gpu_check: done in" in stdout


@pytest.mark.e2e
@needs_data
def test_the_benchmark_json_has_every_row_and_the_study_stages(tiny):
    out, _ = tiny
    bench = json.loads((out / "benchmark.json").read_text())
    assert bench["device"].startswith("cpu")
    assert set(bench["ratios"]) == {
        "bank_mlp_digits_vs_dataloader_loop",
        "bank_mlp_digits_vs_tight_loop",
        "bank_mlp_digits_stacked_vs_vmap",
        "target_smallcnn_28",
        "target_resnet18_32",
    }
    assert set(bench["reference"]) == {
        "bank_smallcnn_28_vs_tight_loop",
        "resnet18_32_bf16_cl_vs_fp32",
        "resnet18_32_tf32_vs_fp32",
    }
    for row in [*bench["ratios"].values(), *bench["reference"].values()]:
        assert row["ours_images_per_s"] > 0 and row["baseline_images_per_s"] > 0
    stages = bench["stages"][STUDY]
    assert {"train_target", "train_bank", "unlearn", "evaluate", "report"} <= set(stages)
    assert stages["unlearn"]["jobs"] == 2  # retrain and finetune on the one random forget set


@pytest.mark.e2e
@needs_data
def test_results_report_logs_and_the_mlflow_store_are_copied(tiny):
    from mlflow.tracking import MlflowClient

    out, _ = tiny
    results = out / "study" / "results" / STUDY
    assert (results / "report.md").stat().st_size > 0 and (results / "report.html").is_file()
    assert (results / "seed_0" / "bank" / "bank.npz").is_file()
    assert not list(results.rglob("*.pt"))  # model files stay out unless MUDIFF_CHECK_MODELS=1 ...
    assert "model.pt" in (out / "study" / "model-files.txt").read_text()  # ... and are listed
    logs = [p.relative_to(out / "study" / "logs").as_posix() for p in (out / "study" / "logs").rglob("*.log")]
    assert f"{STUDY}/seed_0/train_target.log" in logs and any("train_bank" in p for p in logs)
    assert any(p.startswith("data/") and p.endswith("prepare_data.log") for p in logs)  # the data jobs' too
    assert all((out / "study" / "logs" / p).stat().st_size > 0 for p in logs)
    assert list((out / "study" / "benchmarks" / STUDY).rglob("*.tsv"))
    assert "fashion_mnist_tiny" in (out / "snakemake.log").read_text()
    assert (out / "config.yaml").read_text().count("name: fashion_mnist_tiny") == 1
    assert json.loads((out / "env" / "torch.json").read_text())["torch"]
    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow' / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name(STUDY).experiment_id], max_results=1000)
    assert len(runs) >= 14 and {r.info.status for r in runs} == {"FINISHED"}
    assert client.search_runs([client.get_experiment_by_name("benchmark").experiment_id])


@pytest.mark.e2e
@needs_data
def test_the_checkout_is_left_alone(tiny):
    assert not (ROOT / "results" / STUDY).exists() and not (ROOT / "config" / f"{STUDY}.yaml").exists()


@needs_data
def test_the_check_size_is_the_fashion_mnist_study_with_a_smaller_bank_and_roster(tmp_path):
    """The GPU size cannot run here, but its config is written and validated by the same code, and
    a dry run of it in a copy of the repository plans the jobs the script's header promises."""
    import yaml
    from studyrepo import copy_repo, job_stats, snakemake

    out = tmp_path / "out"
    proc = _run(out, "--config-only", timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    full = yaml.safe_load((ROOT / "config" / "fashion_mnist.yaml").read_text())
    assert cfg["name"] == "fashion_mnist_check" and cfg["device"] == "cuda"
    assert cfg["bank"] == {**full["bank"], "models": 64}
    assert cfg["train"] == full["train"] and cfg["scores"]["names"] == full["scores"]["names"]
    assert list(cfg["unlearn"]) == list(full["unlearn"])  # every method of the roster
    repo = copy_repo(tmp_path / "repo")
    stats = job_stats(
        snakemake(repo, "-n", "--resources", "gpu=1", "--configfile", str(out / "config.yaml")).stdout
    )
    assert (stats["forget_set"], stats["unlearn"], stats["evaluate"]) == (5, 19, 19)
    assert not list((ROOT / "config").glob("fashion_mnist_check*"))


def test_it_refuses_without_the_data(tmp_path):
    proc = _run(tmp_path / "out", "--cpu-tiny", timeout=60, MUDIFF_FASHION_MNIST=str(tmp_path / "none"))
    assert proc.returncode != 0 and "MUDIFF_FASHION_MNIST" in proc.stdout


@needs_data
def test_the_gpu_sizes_refuse_a_machine_without_cuda(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    proc = _run(tmp_path / "out", timeout=120)
    assert proc.returncode != 0 and "no CUDA device visible" in proc.stdout and "--cpu-tiny" in proc.stdout


def test_it_refuses_an_unknown_size(tmp_path):
    proc = _run(tmp_path / "out", "--size", "huge", timeout=30)
    assert proc.returncode == 2
