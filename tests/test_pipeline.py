"""End to end: the default study in a temporary copy of the repo, then what a user relies on.

Runs `snakemake --cores 4` once (jobs race for the MLflow store), then checks every output,
one FINISHED MLflow run per job with its artifacts and tags, `dvc status`, and that reruns
are exactly as narrow as they should be.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from studyrepo import REPO, copy_repo, env, job_stats, snakemake
from studyrepo import dry_run_jobs as _dry_run_jobs

from mudiff.analysis.proxies import MIN_MEASURABLE_SECONDS
from mudiff.config import load, unlearn_pairs
from mudiff.forget_sets import names
from mudiff.sections import StudyConfig

# What the default study runs, from its config: the expectations follow the config.
CONFIG = load(REPO / "config" / "default.yaml")
FORGET_SETS = names(CONFIG["forget_sets"])
PAIRS = unlearn_pairs(CONFIG)
METHODS = list(CONFIG["unlearn"])
SIZED = [fs for fs in FORGET_SETS if fs != "class"]  # `class` has the size of class 0

pytestmark = pytest.mark.e2e


def pairs_of(method: str) -> list[str]:
    return [fs for m, fs in PAIRS if m == method]


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    work = copy_repo(tmp_path_factory.mktemp("study") / "repo")
    proc = snakemake(work, "--cores", "4")
    (work / "run.log").write_text(proc.stderr)
    return work


def test_every_output_is_there(study: Path):
    results = study / "results" / "default"
    run = results / "seed_0"  # the default study's one replicate
    assert (results / "report.md").stat().st_size > 0
    for fig in (
        "tow_by_memorization.png",
        "tow_by_entanglement.png",
        "proxies_vs_memorization.png",
        "rum_comparison.png",
        "rsu_by_order.png",
        "forget_samples.png",
        "forget_samples_by_method.png",
    ):
        assert (results / "figures" / fig).stat().st_size > 10_000
    assert (run / "proxies" / "proxies_vs_memorization.png").stat().st_size > 10_000
    proxies = pd.read_parquet(run / "proxies" / "proxies.parquet")
    assert set(proxies["score"]) == {
        "confidence",
        "max_conf",
        "entropy",
        "bi_acc",
        "forgetting_events",
        "holdout_kl",
        "curvature",
        "centroid_distance",
        "privacy_risk",
        "margin",
        "grad_norm",
        "knn_disagreement",
    }
    assert proxies[["spearman", "pearson", "seconds"]].notna().all().all()
    measurable = (
        proxies["seconds"] >= MIN_MEASURABLE_SECONDS
    )  # below: no ratio (training dynamics: ~0 s, no extra training)
    assert (
        proxies.loc[measurable, "time_ratio_to_bank"].notna().all()
        and proxies.loc[~measurable, "time_ratio_to_bank"].isna().all()
    )
    for method, fs in PAIRS:
        for name in ("model.pt", "record.json", "trace.parquet", "predictions.parquet"):
            assert (run / "unlearn" / method / fs / name).is_file()
        metrics = json.loads((run / "evaluate" / method / f"{fs}.json").read_text())
        assert {"FA", "RA", "TA", "MIA", "ToW", "ToW_MIA", "cost_ratio"} <= set(metrics)
        if method == "retrain":
            assert metrics["ToW"] == pytest.approx(1.0) and metrics["cost_ratio"] == pytest.approx(1.0)
        else:
            assert 0.0 <= metrics["ToW"] <= 1.0
    # instance-level difficulty: every non-retrain run's forget samples, censoring kept
    difficulty = pd.read_parquet(run / "analysis" / "difficulty.parquet")
    assert {"method", "forget_set", "id", "residual", "steps_to_forget", "censored", "difficulty"} <= set(
        difficulty.columns
    )
    assert set(map(tuple, difficulty[["method", "forget_set"]].drop_duplicates().to_numpy())) == set(PAIRS)
    findings = json.loads((run / "analysis" / "findings.json").read_text())["findings"]
    assert all(f["reproduced"] in (True, False, None) and f["text"] for f in findings)
    assert all(
        "not testable here (" in f["text"] for f in findings if f["reproduced"] is None
    )  # always with a reason
    assert len(findings) >= 5
    # The shipped settings unlearn: on memorization_mix at least 6 of the 7 non-retrain methods move F's
    # accuracy 10 points or more away from the target's (epoch 0 of the trace), and each run says if it was inert.
    moved = 0
    for method in ("finetune", "neggrad", "neggrad_plus", "l1_sparse", "random_label", "salun", "scrub"):
        trace = pd.read_parquet(run / "unlearn" / method / "memorization_mix" / "trace.parquet")
        target_fa = 100 * trace.loc[trace["epoch"] == 0, "correct"].mean()
        metrics = json.loads((run / "evaluate" / method / "memorization_mix.json").read_text())
        assert isinstance(metrics["inert"], bool) and 0 <= metrics["forget_flip_share"] <= 1
        moved += abs(metrics["FA"] - target_fa) >= 10
    assert moved >= 6
    for fig in ("agreement", "factors", "roc", "difficulty"):
        assert (run / "analysis" / "figures" / f"{fig}.png").stat().st_size > 10_000
    report_text = (results / "report.md").read_text()
    assert "## Instance-level difficulty" in report_text and "## SPEC findings" in report_text
    page = (results / "report.html").read_text()  # the same report, figures inline
    assert "<table>" in page and page.count("data:image/png;base64,") >= 6 and 'src="figures/' not in page
    evaluation = pd.read_parquet(results / "evaluation.parquet")
    assert len(evaluation) == len(PAIRS)
    assert not (run / "unlearn" / "salun" / "es_high").exists()  # a method runs only where the config says
    scores = pd.read_parquet(run / "scores" / "scores.parquet")
    assert len(scores) == 1437 and scores["id"].is_unique
    from mudiff.scores import NAMES

    assert list(scores.columns) == ["id", "label", *NAMES]
    assert (
        scores[list(NAMES)].notna().mean().min() > 0.9
    )  # bank scores are NaN only where a sample is never IN or OUT
    timings = json.loads((run / "scores" / "timings.json").read_text())
    assert set(timings["seconds"]) == set(NAMES) and timings["bank_seconds"] > 0
    for fs in SIZED:
        ids = pd.read_parquet(run / "forget_sets" / f"{fs}.parquet")["id"]
        assert len(ids) == 43 and ids.is_unique and set(ids) <= set(scores["id"])
    whole_class = pd.read_parquet(run / "forget_sets" / "class.parquet")
    assert set(whole_class["id"]) == set(scores.loc[scores["label"] == 0, "id"])
    ranked = pd.read_parquet(run / "forget_sets" / "risk_ranked.parquet")
    assert ranked["rank"].tolist() == list(range(1, 44)) and ranked["privacy_risk"].is_monotonic_decreasing
    for fs in FORGET_SETS:
        manifest = json.loads((run / "forget_sets" / f"{fs}.json").read_text())
        assert manifest["entanglement_score"] > 0 and {"rule", "score", "size", "seed"} <= set(manifest)
    high = pd.read_parquet(run / "forget_sets" / "memorization_high.parquet")["memorization"]
    low = pd.read_parquet(run / "forget_sets" / "memorization_low.parquet")["memorization"]
    assert high.min() >= low.max()
    # forget-set state before unlearning (epoch 0) and after every epoch
    trace = pd.read_parquet(run / "unlearn" / "finetune" / "random" / "trace.parquet")
    assert sorted(trace["epoch"].unique()) == list(range(0, 11))
    report = (results / "report.md").read_text()
    assert "ToW falls as memorization" in report and "Deviations from SPEC" in report
    for rule in ("train_bank/0", "merge_bank"):  # one shard (bank.shards: 1), and its merge
        assert (study / "logs" / "default" / "seed_0" / f"{rule}.log").read_text().strip()
        assert (study / "benchmarks" / "default" / "seed_0" / f"{rule}.tsv").is_file()


def test_one_finished_mlflow_run_per_job(study: Path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{study / 'mlflow.db'}")
    exp = client.get_experiment_by_name("default")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    # prepare_data, track_data, train_target, train_bank (one shard), merge_bank, scores_target,
    # scores_bank, scores, proxies, a forget_set per forget set, unlearn and evaluate per method x
    # forget set, analysis, report
    assert len(runs) == 9 + len(FORGET_SETS) + 2 * len(PAIRS) + 2  # ... analysis, report
    assert {r.info.status for r in runs} == {"FINISHED"}
    keys = [
        (
            r.data.tags["mudiff.rule"],
            r.data.tags.get("mudiff.wildcard.method"),
            r.data.tags.get("mudiff.wildcard.forget_set"),
        )
        for r in runs
    ]
    assert len(set(keys)) == len(keys), "a job logged more than one run"
    # every job's time, split: its fixed start-up cost, its work and recording its outputs; the jobs
    # after the first few start in a warm worker of the study's fork server
    for run in runs:
        timing = {k: run.data.metrics.get(f"job.{k}") for k in ("startup_s", "work_s", "record_s")}
        assert all(v is not None and v >= 0 for v in timing.values()), (run.info.run_name, timing)
    launches = {r.data.tags["mudiff.rule"]: set() for r in runs}
    for run in runs:
        launches[run.data.tags["mudiff.rule"]].add(run.data.tags["mudiff.launch"])
    assert launches["unlearn"] == launches["evaluate"] == launches["analysis"] == {"fork server"}
    digest = yaml.safe_load((study / "data.dvc").read_text())["outs"][0]["md5"]
    for run in runs:
        if run.data.tags["mudiff.rule"] != "prepare_data":  # data.dvc is written after it
            assert run.data.tags["mudiff.data_digest"] == digest
        assert run.data.tags["mudiff.git_commit"] != ""
        assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["mudiff", "outputs"], (
            run.info.run_name
        )
    unlearn = next(
        r for r in runs if r.info.run_name == "unlearn[forget_set=random][method=finetune][seed=0]"
    )
    lr = CONFIG["unlearn"]["finetune"]["lr"]
    assert float(unlearn.data.params["hyper.lr"]) == lr and unlearn.data.params["replicate_seed"] == "0"
    assert "seconds" in unlearn.data.metrics and "peak_memory_mb" in unlearn.data.metrics
    assert len(client.get_metric_history(unlearn.info.run_id, "forget_acc")) == 11
    report = next(r for r in runs if r.data.tags["mudiff.rule"] == "report")
    assert "mudiff.deviations" in report.data.tags
    # a meta-method's epochs run on across its steps: 0 (before) and 1..total
    rum = next(
        r
        for r in runs
        if r.info.run_name == "unlearn[forget_set=memorization_mix][method=rum_f:neggrad_plus][seed=0]"
    )
    assert [m.step for m in client.get_metric_history(rum.info.run_id, "forget_acc")] == list(
        range(0, 6)
    )  # neggrad_plus's 5 epochs as 1 + 2 + 2
    assert json.loads(rum.data.tags["mudiff.note.steps"])[0]["name"] == "low"


def audit(study: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mudiff", "audit", "results/default"],
        cwd=study,
        capture_output=True,
        text=True,
        env={**env(), "PYTHONPATH": str(study / "workflow")},
    )


def test_every_number_leads_to_its_run_commit_and_data_and_the_audit_passes(study: Path):
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{study / 'mlflow.db'}")
    exp = mlflow.get_experiment_by_name("default")
    runs = mlflow.search_runs([exp.experiment_id], max_results=1000)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=study, capture_output=True, text=True
    ).stdout.strip()
    # MLflow's own columns, and one invocation for the whole study
    assert set(runs["tags.mlflow.source.git.commit"]) == {head}
    assert (
        runs["tags.mlflow.user"].str.len().min() > 0
        and runs["tags.mlflow.source.name"].str.endswith("__main__.py").all()
    )
    assert (
        runs["tags.mudiff.invocation"].nunique() == 1 and runs["tags.mudiff.invocation"].str.len().min() == 32
    )
    digest = yaml.safe_load((study / "data.dvc").read_text())["outs"][0]["md5"]
    by_digest = mlflow.search_runs(
        [exp.experiment_id], filter_string=f"dataset.digest = '{digest}'", max_results=1000
    )
    assert set(by_digest["tags.mudiff.rule"]) == set(runs["tags.mudiff.rule"]) - {"prepare_data"}
    # a report number -> its evaluate run -> the commit and data behind it
    evaluation = pd.read_parquet(study / "results" / "default" / "evaluation.parquet")
    row = evaluation[(evaluation["method"] == "finetune") & (evaluation["forget_set"] == "random")].iloc[0]
    from mudiff.io import run_id_of

    assert row["evaluate_run_id"] == run_id_of(
        study / "results" / "default" / "seed_0" / "evaluate" / "finetune" / "random.json"
    )
    run = mlflow.get_run(row["evaluate_run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["mudiff.data_digest"] == digest
    assert float(run.data.metrics["ToW"]) == pytest.approx(row["ToW"])
    report = (study / "results" / "default" / "report.md").read_text()
    assert "## Provenance" in report and f"/runs/{row['evaluate_run_id']})" in report
    report_run = runs[runs["tags.mudiff.rule"] == "report"].iloc[0]
    assert int(report_run["tags.mudiff.input_runs"]) >= len(PAIRS) + len(
        FORGET_SETS
    )  # evaluate and forget-set runs, and more
    # the end of the run said so, and the audit agrees
    log = (study / "run.log").read_text()
    assert "mudiff: study 'default' done." in log and "ToW (1 = as retrain" in log
    assert "Audit: all " in log and "mlflow ui --backend-store-uri sqlite:///mlflow.db" in log
    proc = audit(study)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "all match" in proc.stdout


def test_data_is_versioned_and_reproduces_the_committed_digest(study: Path):
    status = subprocess.run(
        [sys.executable, "-m", "dvc", "status"], cwd=study, capture_output=True, text=True
    )
    assert status.returncode == 0 and "up to date" in status.stdout, status.stdout + status.stderr
    committed = yaml.safe_load((REPO / "data.dvc").read_text())["outs"][0]["md5"]
    produced = yaml.safe_load((study / "data.dvc").read_text())["outs"][0]["md5"]
    assert produced == committed


def test_rerun_with_nothing_changed_does_nothing(study: Path):
    assert "Nothing to be done" in snakemake(study, "-n").stdout


def test_dvc_checkout_of_identical_data_reruns_nothing(study: Path):
    shutil.rmtree(study / "data" / "digits")
    subprocess.run([sys.executable, "-m", "dvc", "checkout", "--quiet"], cwd=study, check=True)
    assert (study / "data" / "digits" / "arrays.npz").is_file()
    assert "Nothing to be done" in snakemake(study, "-n").stdout


def test_changing_one_methods_learning_rate_reruns_only_that_method(study: Path):
    # the default roster as written (not as validated: there the meta-algorithms' steps hold finetune's
    # settings already, and would not follow the change)
    config = {
        **yaml.safe_load((study / "config" / "default.yaml").read_text()),
        "unlearn": StudyConfig().unlearn,
    }
    config["unlearn"]["finetune"]["lr"] = 0.02
    (study / "changed.yaml").write_text(yaml.safe_dump(config))
    out = snakemake(study, "-n", "--configfile", "changed.yaml").stdout
    # finetune's jobs, the meta-algorithms whose steps run finetune (they inherit its settings), and what is
    # downstream of them: the instance-level analysis and the report
    from mudiff import methods

    users = [m for m in METHODS if "mudiff.methods.finetune" in methods.modules(m, CONFIG["unlearn"][m])]
    n = sum(len(pairs_of(m)) for m in users)
    assert {"finetune", "rum", "rsu:finetune"} <= set(users)
    assert job_stats(out) == {"unlearn": n, "evaluate": n, "analysis": 1, "report": 1, "all": 1}
    for rule, wildcards in _dry_run_jobs(out):
        if rule in ("unlearn", "evaluate"):
            assert wildcards["method"] in users


def dry_run_after_editing(study: Path, module: str) -> str:
    """A dry run's output with one package file changed (restored afterwards)."""
    source = study / "workflow" / "mudiff" / module
    original = source.read_text()
    source.write_text(original + "\n# a change\n")
    try:
        return snakemake(study, "-n").stdout
    finally:
        source.write_text(original)


def test_changing_one_methods_code_reruns_only_that_method(study: Path):
    out = dry_run_after_editing(study, "methods/neggrad_plus.py")
    wrapping = [
        "neggrad_plus",
        "rum_f:neggrad_plus",
        "shuffle:neggrad_plus",
    ]  # and the meta-methods that wrap it
    n = sum(len(pairs_of(m)) for m in wrapping)
    assert job_stats(out) == {"unlearn": n, "evaluate": n, "analysis": 1, "report": 1, "all": 1}
    assert {w["method"] for r, w in _dry_run_jobs(out) if r == "unlearn"} == set(wrapping)


def test_changing_rums_code_reruns_only_meta_methods_that_use_it(study: Path):
    out = dry_run_after_editing(study, "methods/rum.py")
    assert {w["method"] for r, w in _dry_run_jobs(out) if r == "unlearn"} == {
        "rum_f:neggrad_plus",
        "rum",
        "shuffle:neggrad_plus",
    }
    assert "scores" not in job_stats(out)


def test_changing_a_target_score_hyperparameter_does_not_touch_the_bank(study: Path):
    config = load(study / "config" / "default.yaml")  # the study with every default filled in
    config["scores"]["knn_disagreement"]["k"] = 5
    (study / "changed.yaml").write_text(yaml.safe_dump(config))
    stats = job_stats(snakemake(study, "-n", "--configfile", "changed.yaml").stdout)
    assert stats["scores_target"] == 1 and "scores_bank" not in stats
    assert "train_bank" not in stats and "merge_bank" not in stats


def test_the_audit_still_passes_after_the_probes_and_names_each_tampering(study: Path):
    """Last: it tampers with the study. An edited output, a deleted run, a stage's code edited, a model
    (recorded by reference) changed, the artifact store's copy changed: the audit names each one."""
    from mlflow.tracking import MlflowClient

    assert audit(study).returncode == 0  # the dry runs above, and the data checked out again, changed nothing
    results = study / "results" / "default" / "seed_0"
    metrics = results / "evaluate" / "finetune" / "random.json"
    metrics.write_text(json.dumps({**json.loads(metrics.read_text()), "ToW": 0.99}))  # still names its run
    model = results / "unlearn" / "neggrad" / "memorization_mix" / "model.pt"
    data = model.read_bytes()
    model.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    client = MlflowClient(tracking_uri=f"sqlite:///{study / 'mlflow.db'}")
    from mudiff.io import run_id_of

    deleted = run_id_of(results / "forget_sets" / "random.json")
    client.delete_run(deleted)
    target = run_id_of(results / "target" / "metrics.json")
    copy = next((study / "mlartifacts").rglob(f"{target}/artifacts/outputs/metrics.json"))
    copy.write_text(copy.read_text() + " ")
    stage = study / "workflow" / "mudiff" / "stages" / "proxies.py"
    stage.write_text(stage.read_text() + "\n# an edit\n")
    proc = audit(study)
    assert proc.returncode == 1
    lines = {
        line.split()[0]: line for line in proc.stdout.splitlines() if line.startswith(("results/", "data/"))
    }
    at = lambda path: lines[str(path.relative_to(study))]  # noqa: E731
    assert "changed since its run wrote it" in at(metrics)
    assert "changed since its run wrote it" in at(model)
    assert f"its run {deleted} was deleted" in at(results / "forget_sets" / "random.json")
    assert "artifact store's copy (outputs/metrics.json) differs" in at(results / "target" / "metrics.json")
    assert "stale: code changed since (workflow/mudiff/stages/proxies.py)" in at(
        results / "proxies" / "proxies.parquet"
    )
    assert str((results / "scores" / "scores.parquet").relative_to(study)) not in lines  # passes: not listed
    assert "do not match" in proc.stdout.splitlines()[-1]
