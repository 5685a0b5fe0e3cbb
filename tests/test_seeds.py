"""Replicates: a tiny study with two seeds runs each seed's stages in its own folder, and the
report aggregates them (mean and 95% t-interval over the seeds). A method variant
(`rsu:finetune@random`) runs beside its base method. Adding a seed reruns only that seed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from studyrepo import TINY, copy_repo, runs, snakemake, write_config

pytestmark = pytest.mark.e2e

CONFIG = {
    **TINY,
    "name": "seeds",
    "seeds": [0, 1],
    "forget_sets": {**TINY["forget_sets"], "by_score": {"memorization": ["high"]}},
    "unlearn": {
        "retrain": {},
        "finetune": {"epochs": 1},
        "rsu:finetune@random": {"order": "random", "forget_sets": ["random"], "inner": {"epochs": 1}},
    },
}
PAIRS = [(m, fs) for m in ("retrain", "finetune") for fs in ("random", "memorization_high")]
PAIRS += [("rsu:finetune@random", "random")]


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> tuple[Path, str]:
    repo = copy_repo(tmp_path_factory.mktemp("seeds") / "repo")
    config = write_config(repo, CONFIG, "seeds.yaml")
    snakemake(repo, "--cores", "2", "--configfile", config)
    return repo, config


def test_each_seed_is_a_replicate_of_its_own(study):
    repo, _ = study
    results = repo / "results" / "seeds"
    for seed in (0, 1):
        for method, fs in PAIRS:
            assert (results / f"seed_{seed}" / "evaluate" / method / f"{fs}.json").is_file()
        assert (results / f"seed_{seed}" / "analysis" / "findings.json").is_file()
    sets = [
        set(pd.read_parquet(results / f"seed_{s}" / "forget_sets" / "random.parquet")["id"]) for s in (0, 1)
    ]
    assert sets[0] != sets[1]  # each seed draws its own random forget set
    models = [(results / f"seed_{s}" / "target" / "model.pt").read_bytes() for s in (0, 1)]
    assert models[0] != models[1]  # and trains its own target


def test_report_gives_mean_and_t_interval_over_the_seeds(study):
    repo, _ = study
    results = repo / "results" / "seeds"
    evaluation = pd.read_parquet(results / "evaluation.parquet")
    assert sorted(evaluation["seed"].unique()) == [0, 1] and len(evaluation) == 2 * len(PAIRS)
    summary = pd.read_parquet(results / "summary.parquet").set_index(["method", "forget_set"])
    assert (summary["seeds"] == 2).all()
    for (method, fs), row in summary.iterrows():  # known answer from the per-seed evaluations
        tow = [
            json.loads((results / f"seed_{s}" / "evaluate" / method / f"{fs}.json").read_text())["ToW"]
            for s in (0, 1)
        ]
        half = stats.t.ppf(0.975, 1) * np.std(tow, ddof=1) / np.sqrt(2)
        assert row["ToW"] == pytest.approx(np.mean(tow))
        assert row["ToW_ci_low"] == pytest.approx(np.mean(tow) - half) and row[
            "ToW_ci_high"
        ] == pytest.approx(np.mean(tow) + half)
    findings = json.loads((results / "findings.json").read_text())["findings"]
    assert findings and all(f["seeds"] == 2 and 0 <= f["seeds_reproduced"] <= 2 for f in findings)
    report = (results / "report.md").read_text()
    assert "mean over 2 seeds (0, 1)" in report and "### Replicates" in report and "mean [95% CI]" in report
    assert "### RSU by order" in report and "rsu:finetune@random" in report
    assert (results / "figures" / "rsu_by_order.png").stat().st_size > 10_000
    agreement = pd.read_parquet(results / "seed_0" / "analysis" / "agreement.parquet")
    compared = pd.concat([agreement[c] for c in ("method_a", "method_b") if c in agreement]).dropna()
    assert not any("@" in m for m in compared)  # a variant is not another algorithm


def test_every_job_of_every_seed_logged_one_finished_run_with_its_seed(study):
    repo, _ = study
    found = runs(repo, "seeds")
    assert {r.info.status for r in found} == {"FINISHED"}
    per_seed = [r for r in found if "mudiff.wildcard.seed" in r.data.tags]
    assert {r.data.params["replicate_seed"] for r in per_seed} == {"0", "1"}
    by_seed = {
        s: sorted(
            r.info.run_name.replace(f"[seed={s}]", "")
            for r in per_seed
            if r.data.params["replicate_seed"] == s
        )
        for s in ("0", "1")
    }
    assert by_seed["0"] == by_seed["1"]  # the same jobs in each replicate
    assert len(found) == len(per_seed) + 3  # prepare_data, track_data, report


def test_adding_a_seed_runs_only_that_seed_and_the_report(study):
    repo, _ = study
    config = write_config(repo, {**CONFIG, "seeds": [0, 1, 2]}, "three.yaml")
    out = snakemake(repo, "-n", "--configfile", config).stdout
    jobs = [block for block in out.split("\nrule ")[1:]]
    seeds = {b.split(":")[0]: set() for b in jobs}
    for block in jobs:
        rule = block.split(":")[0]
        if "seed=" in block:
            seeds[rule].add(block.split("seed=")[1].split(",")[0].split()[0])
    per_seed = {r: s for r, s in seeds.items() if r not in ("report", "all")}
    assert {"train_target", "train_bank", "unlearn", "evaluate", "analysis"} <= set(per_seed), seeds
    assert all(s == {"2"} for s in per_seed.values()), seeds
    assert "report" in seeds and "prepare_data" not in seeds
