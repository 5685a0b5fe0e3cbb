"""The benchmark script: its stage table pools replicates, and a quick run writes a complete table.

Speed itself is never asserted here (ratios come from the benchmark's own run)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench_module():
    spec = importlib.util.spec_from_file_location("mudiff_benchmark", ROOT / "bench" / "benchmark.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["mudiff_benchmark"] = module
    spec.loader.exec_module(module)
    return module


def _tsv(path: Path, seconds: list[float]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("s\th:m:s\n" + "".join(f"{s}\t0:00:01\n" for s in seconds))


def _log(path: Path, *timings: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"some output\nmudiff.timing {json.dumps(t)}\n" for t in timings) + "done\n")


def test_stage_times_pool_seeds_and_jobs_per_rule_and_split_each_jobs_time(bench_module, tmp_path):
    bench, logs = tmp_path / "benchmarks" / "study", tmp_path / "logs" / "study"
    _tsv(bench / "prepare_data.tsv", [2.0])  # no log: wall time only
    for seed, scale in ((0, 1.0), (1, 2.0)):
        _tsv(bench / f"seed_{seed}" / "train_bank.tsv", [10.0 * scale, 12.0 * scale])  # repeats: their mean
        _tsv(bench / f"seed_{seed}" / "unlearn" / "finetune" / "random.tsv", [3.0 * scale])
        _tsv(bench / f"seed_{seed}" / "unlearn" / "salun" / "random.tsv", [4.0 * scale])
        warm = {"startup_s": 0.5 * scale, "work_s": 2.0 * scale, "record_s": 0.25, "launch": "fork server"}
        _log(logs / f"seed_{seed}" / "unlearn" / "finetune" / "random.log", warm)
        # a job that ran twice: its last line counts
        cold = {"startup_s": 5.0, "work_s": 1.0, "record_s": 0.5, "launch": "own interpreter"}
        _log(logs / f"seed_{seed}" / "unlearn" / "salun" / "random.log", warm, cold)
    _log(
        logs / "seed_0" / "train_bank.log", {"startup_s": None, "work_s": 9.0, "record_s": 0.1, "launch": "x"}
    )
    times = bench_module.stage_times("study", tmp_path)
    untimed = {"timed": 0, "warm": 0, "startup_s": 0.0, "work_s": 0.0, "record_s": 0.0}
    assert times == {
        "prepare_data": {"jobs": 1, "seconds": 2.0, **untimed},
        "train_bank": {"jobs": 2, "seconds": 11.0 + 22.0, **untimed},  # a start-up of None: not timed
        "unlearn": {
            "jobs": 4,
            "seconds": 3.0 + 4.0 + 6.0 + 8.0,
            "timed": 4,
            "warm": 2,
            "startup_s": 0.5 + 1.0 + 5.0 + 5.0,
            "work_s": 2.0 + 4.0 + 1.0 + 1.0,
            "record_s": 0.25 + 0.25 + 0.5 + 0.5,
        },
    }
    table = bench_module.stage_table(times).splitlines()
    assert "(56 s of job time; 11.5 s of it start-up)" in table[0]
    unlearn = next(line.split() for line in table if line.split()[0] == "unlearn")
    assert unlearn == ["unlearn", "4", "21.0", "5.25", "11.5", "8.0", "1.5", "2/4"]
    prepare = next(line.split() for line in table if line.split()[0] == "prepare_data")
    assert prepare[-4:] == ["-", "-", "-", "0/1"]


def test_quick_run_writes_every_ratio(bench_module, tmp_path, monkeypatch):
    monkeypatch.setattr(bench_module, "log_to_mlflow", lambda result, path: None)  # no store in a unit test
    out = tmp_path / "benchmark.json"
    bench_module.main(["--quick", "--device", "cpu", "--out", str(out), "--study", "missing"])
    result = json.loads(out.read_text())
    assert result["device"].startswith("cpu")
    assert set(result["ratios"]) == {
        "bank_mlp_digits_vs_dataloader_loop",
        "bank_mlp_digits_vs_tight_loop",
        "bank_mlp_digits_stacked_vs_vmap",
        "target_smallcnn_28",
        "target_resnet18_32",
    }
    for row in result["ratios"].values():
        assert row["ours_images_per_s"] > 0 and row["baseline_images_per_s"] > 0 and row["ratio"] > 0
    bank_row = result["ratios"]["bank_mlp_digits_vs_tight_loop"]
    assert bank_row["ratio_low"] <= bank_row["ratio"] <= bank_row["ratio_high"]
    assert (
        "stacked_mlp" in bank_row["what"]
        or "stacked_mlp" in result["ratios"]["bank_mlp_digits_vs_dataloader_loop"]["what"]
    )
    assert result["stages"] == {"missing": {}}
