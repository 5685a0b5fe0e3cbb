"""The DAG tells the truth: what changed reruns, in one pass; nothing else does; stale data never passes.

Unit tests of the data records and the registries first, then a tiny study run once in a copy of
the repository, probed with the edits a user makes. A rerun question is answered by a dry run
that lists exactly the expected jobs, or by a real run that lists the jobs it ran.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from studyrepo import TINY, copy_repo, dry_run_jobs, job_stats, runs, snakemake, write_config

from mudiff.data.records import DataMismatch, dir_md5, folder_files, verify
from mudiff.sources import PACKAGE_ROOT, module_files

PER_SEED = {
    "train_target",
    "train_bank",
    "merge_bank",
    "scores_target",
    "scores_bank",
    "scores",
    "proxies",
    "forget_set",
    "analysis",
}


# --------------------------------------------------------------------------- unit


@pytest.mark.parametrize("table", ["methods/registry.py", "models/registry.py", "data/registry.py"])
def test_registry_tables_are_data_only(table):
    """A registry table is left out of every job's sources (jobs track the entries they run), which is
    exact only while the table holds nothing but name -> module strings."""
    tree = ast.parse((PACKAGE_ROOT / table).read_text())
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the docstring
        assert isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict), ast.dump(node)[:80]
        for k, v in zip(node.value.keys, node.value.values):
            assert isinstance(k, ast.Constant) and isinstance(v, ast.Constant) and isinstance(v.value, str)


def _rel(module: str) -> set[str]:
    return {str(Path(f).relative_to(PACKAGE_ROOT)) for f in module_files(module)}


def test_no_stage_depends_on_the_validation_code_or_a_registry_table():
    from mudiff.__main__ import STAGES

    for stage, module in STAGES.items():
        files = _rel(module)
        assert "config.py" not in files, stage  # config.py validates, and knows every registry
        assert not {f for f in files if f.endswith("registry.py")}, stage
    assert "config.py" not in _rel("mudiff.methods.finetune")


def _dvc_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "data" / "ds").mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=repo, check=True)
    np.savez(repo / "data" / "ds" / "arrays.npz", y=np.arange(5))
    (repo / "data" / "ds" / "manifest.json").write_text("{}\n")
    return repo


def test_the_folder_digest_is_dvcs_and_each_dataset_gets_its_own_entry(tmp_path, monkeypatch):
    from mudiff.data.records import track

    repo = _dvc_repo(tmp_path)
    (repo / "data" / "other").mkdir()
    (repo / "data" / "other" / "arrays.npz").write_bytes(b"other")
    monkeypatch.chdir(repo)
    record = track("data/ds", "data.dvc")
    track("data/other", "data.dvc")
    outs = yaml.safe_load((repo / "data.dvc").read_text())["outs"]
    assert [o["path"] for o in outs] == ["data/ds", "data/other"]
    assert outs[0]["md5"] == record["md5"] == dir_md5(folder_files("data/ds"))  # what `dvc add` computed
    assert json.loads(Path("data/ds.record.json").read_text()) == record
    status = subprocess.run(
        [sys.executable, "-m", "dvc", "status"], capture_output=True, text=True, check=True
    )
    assert "up to date" in status.stdout
    # a new version of one dataset changes its entry only
    (repo / "data" / "other" / "arrays.npz").write_bytes(b"changed")
    track("data/other", "data.dvc")
    again = yaml.safe_load((repo / "data.dvc").read_text())["outs"]
    assert again[0] == outs[0] and again[1]["md5"] != outs[1]["md5"]


def test_the_old_single_record_of_all_data_is_replaced(tmp_path, monkeypatch):
    from mudiff.data.records import track

    repo = _dvc_repo(tmp_path)
    monkeypatch.chdir(repo)
    subprocess.run([sys.executable, "-m", "dvc", "add", "-q", "data"], check=True)  # the former layout
    assert yaml.safe_load(Path("data.dvc").read_text())["outs"][0]["path"] == "data"
    track("data/ds", "data.dvc")
    assert [o["path"] for o in yaml.safe_load(Path("data.dvc").read_text())["outs"]] == ["data/ds"]


def test_a_job_refuses_data_that_is_not_the_recorded_data(tmp_path, monkeypatch):
    from mudiff.data.records import track

    repo = _dvc_repo(tmp_path)
    monkeypatch.chdir(repo)
    record = track("data/ds", "data.dvc")
    assert verify("data/ds.record.json") == record
    arrays = Path("data/ds/arrays.npz")
    good = arrays.read_bytes()
    np.savez(arrays, y=np.arange(5)[::-1])  # a valid file with other labels
    with pytest.raises(DataMismatch) as err:
        verify("data/ds.record.json")
    msg = str(err.value)
    assert "data/ds/arrays.npz" in msg and record["files"]["arrays.npz"] in msg
    assert re.search(r"md5 [0-9a-f]{32}", msg) and "dvc checkout data.dvc" in msg
    arrays.write_bytes(good)
    verify("data/ds.record.json")
    # data.dvc's entry edited by hand
    text = Path("data.dvc").read_text()
    Path("data.dvc").write_text(text.replace(record["md5"], "0" * 32 + ".dir"))
    with pytest.raises(DataMismatch) as err:
        verify("data/ds.record.json")
    assert (
        "data.dvc" in str(err.value)
        and "0" * 32 + ".dir" in str(err.value)
        and record["md5"] in str(err.value)
    )


# --------------------------------------------------------------------------- a tiny study, probed

e2e = pytest.mark.e2e


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    repo = copy_repo(tmp_path_factory.mktemp("dag") / "repo")
    write_config(repo, TINY)
    snakemake(repo, "--cores", "2", "--configfile", "config/tiny.yaml")
    return repo


def dry(repo: Path, *args: str) -> dict[str, int]:
    return job_stats(snakemake(repo, "-n", "--configfile", "config/tiny.yaml", *args).stdout)


def ran(repo: Path, *args: str) -> dict[str, int]:
    """{rule: jobs run} of a real run."""
    err = snakemake(repo, "--cores", "2", "--configfile", "config/tiny.yaml", *args).stderr
    found: dict[str, int] = {}
    for rule in re.findall(r"^(?:local)?(?:rule|checkpoint) (\w+):$", err, re.M):
        found[rule] = found.get(rule, 0) + 1
    return found


def edited(repo: Path, module: str):
    path = repo / "workflow" / "mudiff" / module
    return path, path.read_text()


@e2e
def test_nothing_changed_nothing_runs_and_no_command_holds_the_checkout_path(tiny):
    assert dry(tiny) == {}
    out = snakemake(tiny, "-n", "--forceall", "-p", "--configfile", "config/tiny.yaml").stdout
    commands = [line for line in out.splitlines() if "python -m mudiff" in line]
    assert any(" train_target " in c for c in commands) and not [c for c in commands if str(tiny) in c]


@e2e
def test_a_moved_checkout_reruns_nothing(tiny, tmp_path):
    moved = tmp_path / "moved"
    shutil.copytree(tiny, moved, symlinks=True)  # copies keep their mtimes (copy2)
    assert dry(moved) == {}


@e2e
def test_snakemake_report_offline_holds_the_flagged_outputs_and_links_to_mudiffs_report(tiny):
    """`snakemake --report` on the finished study, with the network out of reach: one self-contained
    page with the DAG's flagged figures and tables, mudiff's report.html inside it, and each report
    pointing at the other (the page is written where report.md links to it)."""
    import base64

    from studyrepo import env

    page = tiny / "results" / "tiny" / "snakemake-report.html"
    offline = {k: v for k, v in env().items() if k.lower() != "no_proxy"}
    offline |= {k: "http://127.0.0.1:9" for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")}
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--configfile", "config/tiny.yaml", "--report", str(page)],
        cwd=tiny,
        env=offline,
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        assert proc.returncode == 0, proc.stderr[-4000:]
        assert "downloading" not in proc.stderr.lower()  # every asset of the page ships with Snakemake
        html = page.read_text()
        results = json.loads(re.search(r"var results = (\{.*?\});\n", html, re.S).group(1))
        categories = json.loads(re.search(r"var categories = (\{.*?\});\n", html, re.S).group(1))
        flagged = {
            "results/tiny/report.html",
            "results/tiny/summary.parquet",
            "results/tiny/evaluation.parquet",
            "results/tiny/findings.json",
            "results/tiny/figures/tow_by_memorization.png",
            "results/tiny/figures/proxies_vs_memorization.png",
            "results/tiny/seed_0/proxies/proxies.csv",
            "results/tiny/seed_0/proxies/proxies_vs_memorization.png",
            "results/tiny/seed_0/analysis/findings.json",
            *(
                f"results/tiny/seed_0/analysis/figures/{name}.png"
                for name in ("agreement", "factors", "roc", "difficulty")
            ),
        }
        assert flagged <= set(results), flagged - set(results)
        assert {"mudiff report", "Report", "Analysis", "Proxies"} <= set(
            categories
        ) and "seed 0" in categories["Analysis"]
        assert all(r["caption"].strip() for r in results.values())  # every flagged output has its caption
        assert "system-message" not in html  # the captions and the description render cleanly
        # the description names mudiff's report as the science, and links to it next to the page
        assert "results/tiny/report.md" in html and r"href=\"report.html\"" in html
        # mudiff's report is inside, and links back to this page, where it was written
        inside = base64.b64decode(
            results["results/tiny/report.html"]["data_uri"].split("base64,", 1)[1]
        ).decode()
        assert "mudiff report: study" in inside and 'href="snakemake-report.html"' in inside
        report_md = (tiny / "results" / "tiny" / "report.md").read_text()
        assert (
            "snakemake --report results/tiny/snakemake-report.html --configfile config/tiny.yaml" in report_md
        )
        assert "](snakemake-report.html)" in report_md
        audit = subprocess.run(
            [sys.executable, "-m", "mudiff", "audit", "results/tiny"],
            cwd=tiny,
            env={**env(), "PYTHONPATH": str(tiny / "workflow")},
            capture_output=True,
            text=True,
        )
        assert audit.returncode == 0, audit.stdout[
            -3000:
        ]  # Snakemake's page beside the outputs is not one of them
    finally:
        page.unlink(
            missing_ok=True
        )  # not a pipeline output: the later probes (and the audit) see the study as it was


@e2e
def test_an_edit_to_the_mlp_reruns_every_job_that_trains_or_loads_it_and_what_follows(tiny):
    path, text = edited(tiny, "models/mlp.py")
    path.write_text(text + "\n# a change\n")
    try:
        stats = dry(tiny)
    finally:
        path.write_text(text)
    # every replicate job but the data's; unlearn and evaluate: retrain and finetune on `random`
    assert stats == {**{r: 1 for r in PER_SEED}, "unlearn": 2, "evaluate": 2, "report": 1, "all": 1}


@e2e
def test_a_new_method_registered_reruns_nothing_and_named_in_the_study_only_its_jobs_and_the_report(tiny):
    registry, text = edited(tiny, "methods/registry.py")
    method = tiny / "workflow" / "mudiff" / "methods" / "finetune_again.py"
    method.write_text(
        '"""Fine-tuning again, under another name."""\n\nfrom mudiff.methods.finetune import Params, unlearn  # noqa: F401\n'
    )
    registry.write_text(
        text.replace("METHODS = {\n", 'METHODS = {\n    "finetune_again": "mudiff.methods.finetune_again",\n')
    )
    config = yaml.safe_load((tiny / "config" / "tiny.yaml").read_text())
    config["unlearn"]["finetune_again"] = {"epochs": 1}
    (tiny / "config" / "with_method.yaml").write_text(yaml.safe_dump(config))
    try:
        assert dry(tiny) == {}
        stats = job_stats(snakemake(tiny, "-n", "--configfile", "config/with_method.yaml").stdout)
    finally:
        registry.write_text(text)
        method.unlink()
    # the instance-level analysis compares methods, so it takes the new one in
    assert stats == {"unlearn": 1, "evaluate": 1, "analysis": 1, "report": 1, "all": 1}


@e2e
def test_edits_to_the_method_registry_code_and_the_validation_code(tiny):
    """methods/__init__.py (name grammar, lookup) is code every unlearn job runs; config.py only
    validates (a changed default reaches the jobs as a changed param)."""
    for module, expected in (
        ("methods/__init__.py", {"unlearn": 2, "evaluate": 2, "analysis": 1, "report": 1, "all": 1}),
        ("config.py", {}),
    ):
        path, text = edited(tiny, module)
        path.write_text(text + "\n# a change\n")
        try:
            assert dry(tiny) == expected, module
        finally:
            path.write_text(text)


@e2e
def test_lost_data_and_code_edits_rerun_what_they_change_in_one_pass(tiny):
    shutil.rmtree(tiny / "data")  # prepared data lost, its records with it
    loader, loader_text = edited(tiny, "data/digits.py")  # the loader's code edited: its data stays the same
    stage, stage_text = edited(tiny, "stages/evaluate.py")
    loader.write_text(loader_text + "\n# a change\n")
    stage.write_text(stage_text + "\n# a change\n")
    expected = {"prepare_data": 1, "track_data": 1, "evaluate": 2, "analysis": 1, "report": 1, "all": 1}
    try:
        assert ran(tiny) == expected
        assert dry(tiny) == {}  # one pass
    finally:
        loader.write_text(loader_text)
        stage.write_text(stage_text)
    assert ran(tiny) == expected  # the edits undone: the same jobs again, and the study is up to date


@e2e
def test_a_second_study_on_the_same_data_reuses_it(tiny):
    config = {**TINY, "name": "tiny_other", "train": {"epochs": 2}}
    write_config(tiny, config, "other.yaml")
    stats = job_stats(snakemake(tiny, "-n", "--configfile", "config/other.yaml").stdout)
    assert "prepare_data" not in stats and "track_data" not in stats and stats["train_target"] == 1


@e2e
def test_a_changed_split_runs_a_whole_study_in_one_pass_and_leaves_the_first_as_it_was(tiny):
    record = (tiny / "data" / "digits.record.json").read_text()
    config = {**TINY, "name": "tiny_split", "data": {"split_seed": 1}}
    write_config(tiny, config, "split.yaml")
    stats = job_stats(snakemake(tiny, "-n", "--configfile", "config/split.yaml").stdout)
    assert stats == {
        "prepare_data": 1,
        "track_data": 1,
        **{r: 1 for r in PER_SEED},
        "unlearn": 2,
        "evaluate": 2,
        "report": 1,
        "all": 1,
    }
    snakemake(tiny, "--cores", "2", "--configfile", "config/split.yaml")
    assert job_stats(snakemake(tiny, "-n", "--configfile", "config/split.yaml").stdout) == {}  # one pass
    assert dry(tiny) == {} and (tiny / "data" / "digits.record.json").read_text() == record
    outs = {o["path"]: o["md5"] for o in yaml.safe_load((tiny / "data.dvc").read_text())["outs"]}
    assert set(outs) == {"data/digits", "data/digits-split1-test0.2"}
    ids = json.loads((tiny / "data" / "digits-split1-test0.2" / "manifest.json").read_text())["split"]
    assert ids == {"test_fraction": 0.2, "seed": 1}
    for run in runs(tiny, "tiny_split"):
        if run.data.tags["mudiff.rule"] != "prepare_data":
            assert run.data.tags["mudiff.data_digest"] == outs["data/digits-split1-test0.2"], (
                run.info.run_name
            )


@e2e
def test_bank_shards_are_jobs_of_their_own_and_rerun_only_the_bank_and_what_follows(tiny, tmp_path):
    """bank.shards: 2 is two train_bank jobs (shards 0 and 1) and one merge_bank; the change reruns the
    bank's jobs and what follows from the bank, nothing of the target; the merged bank is the one
    job's bank, array for array."""
    config = write_config(tiny, {**TINY, "bank": {**TINY["bank"], "shards": 2}}, "shards.yaml")
    out = snakemake(tiny, "-n", "--configfile", config).stdout
    shards = sorted(wc.get("shard") for rule, wc in dry_run_jobs(out) if rule == "train_bank")
    assert shards == ["0", "1"]
    # the bank, the bank scores and all that reads them; not the data, the target or its scores
    assert job_stats(out) == {
        "train_bank": 2,
        "merge_bank": 1,
        "scores_bank": 1,
        "scores": 1,
        "proxies": 1,
        "forget_set": 1,
        "unlearn": 2,
        "evaluate": 2,
        "analysis": 1,
        "report": 1,
        "all": 1,
    }
    copy = tmp_path / "sharded"
    shutil.copytree(tiny, copy, symlinks=True)
    proc = snakemake(copy, "--cores", "2", "--configfile", config, "--until", "merge_bank")
    assert sorted(re.findall(r"^(?:local)?rule (\w+):$", proc.stderr, re.M)) == [
        "merge_bank",
        "train_bank",
        "train_bank",
    ]
    bank = Path("results/tiny/seed_0/bank")
    with np.load(tiny / bank / "bank.npz") as one, np.load(copy / bank / "bank.npz") as two:
        assert sorted(one.files) == sorted(two.files)
        for name in one.files:
            assert np.array_equal(one[name], two[name]), name
    summary = json.loads((copy / bank / "summary.json").read_text())
    assert summary["shards"] == 2 and summary["model"] == "mlp"
    assert (copy / "logs" / "tiny" / "seed_0" / "train_bank" / "1.log").is_file()
    assert (copy / "benchmarks" / "tiny" / "seed_0" / "merge_bank.tsv").is_file()


def _force_train(repo: Path) -> subprocess.CompletedProcess:
    return snakemake(
        repo,
        "--cores",
        "1",
        "--configfile",
        "config/tiny.yaml",
        "--forcerun",
        "train_target",
        "--until",
        "train_target",
        check=False,
    )


@e2e
def test_data_changed_behind_the_pipelines_back_is_refused(tiny):
    arrays = tiny / "data" / "digits" / "arrays.npz"
    good, stat = arrays.read_bytes(), arrays.stat()
    with np.load(arrays) as f:
        tampered = {k: f[k] for k in f.files}
    tampered["y_train"] = (tampered["y_train"] + 1) % 10
    record = json.loads((tiny / "data" / "digits.record.json").read_text())
    train_log = tiny / "logs" / "tiny" / "seed_0" / "train_target.log"

    def restore():
        arrays.write_bytes(good)
        os.utime(arrays, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    # other labels in a valid file, with the same mtime: only the content says
    with open(arrays, "wb") as fh:
        np.savez(fh, **tampered)
    os.utime(arrays, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    try:
        proc = _force_train(tiny)
        log = train_log.read_text()
        assert proc.returncode != 0 and "DataMismatch" in log
        assert "data/digits/arrays.npz" in log and record["files"]["arrays.npz"] in log
    finally:
        restore()
    # data.dvc's entry edited by hand: the job names data.dvc and both digests
    dvc = tiny / "data.dvc"
    text = dvc.read_text()
    dvc.write_text(text.replace(record["md5"], "f" * 32 + ".dir"))
    try:
        proc = _force_train(tiny)
        log = train_log.read_text()
        assert proc.returncode != 0 and "data.dvc" in log and "f" * 32 in log and record["md5"] in log
    finally:
        dvc.write_text(text)
    # a newer changed file reruns track_data, which refuses it: not the arrays prepare_data wrote
    with open(arrays, "wb") as fh:
        np.savez(fh, **tampered)
    try:
        proc = snakemake(
            tiny, "--cores", "1", "--configfile", "config/tiny.yaml", "--until", "track_data", check=False
        )
        log = (tiny / "logs" / "data" / "digits" / "track_data.log").read_text()
        assert proc.returncode != 0 and "changed after it was prepared" in log
    finally:
        restore()
