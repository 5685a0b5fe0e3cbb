"""The MLflow record of a job (mudiff.tracking): standard tags, dataset inputs, invocation, outputs and their run ids."""

from __future__ import annotations

import json
import subprocess

import mlflow
import pandas as pd
import pytest

from mudiff import io
from mudiff.data.records import dir_md5
from mudiff.io import digest


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    from mudiff.tracking import _client, init_store

    return _client(), init_store("s"), uri


def dataset(tmp_path, name="digits"):
    """A prepared dataset folder with its record and data.dvc entry, as track_data leaves them."""
    folder = tmp_path / "data" / name
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(
        json.dumps({"dataset": "digits", "source": "default", "n_train": 3, "n_test": 1})
    )
    files = {"manifest.json": digest(folder / "manifest.json")}
    md5 = dir_md5(files)
    (tmp_path / "data.dvc").write_text(f"outs:\n- md5: {md5}\n  path: data/{name}\n")
    record = tmp_path / "data" / f"{name}.record.json"
    record.write_text(
        json.dumps({"path": f"data/{name}", "dvc_file": "data.dvc", "md5": md5, "files": files})
    )
    return f"data/{name}.record.json", md5


def test_run_has_standard_tags_invocation_and_dataset_input(store, tmp_path):
    from mudiff.tracking import invocation, job_run

    client, exp_id, uri = store
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    record, md5 = dataset(tmp_path)
    with job_run({"rule": "scores", "study": "s", "params": {}, "input": {"data_version": record}}) as run:
        run_id = run.run_id
    got = client.get_run(run_id)
    tags = got.data.tags
    for key in ("mlflow.user", "mlflow.source.name", "mlflow.source.type"):
        assert tags[key], key
    assert tags["mudiff.invocation"] == invocation()["mudiff.invocation"]
    assert tags["mudiff.workdir"] == str(tmp_path.resolve())
    (ds,) = got.inputs.dataset_inputs
    assert ds.dataset.digest == md5 and ds.dataset.name == "digits" and ds.dataset.source_type == "dvc"
    assert json.loads(ds.dataset.source)["path"] == "data/digits"
    assert {t.key: t.value for t in ds.tags}["mlflow.data.context"] == "upstream"
    mlflow.set_tracking_uri(
        uri
    )  # the fluent API's store is process-wide: an earlier test may have set another
    found = mlflow.search_runs([exp_id], filter_string=f"dataset.digest = '{md5}'", output_format="list")
    assert [r.info.run_id for r in found] == [run_id]
    by_invocation = mlflow.search_runs(
        [exp_id], filter_string=f"tags.`mudiff.invocation` = '{tags['mudiff.invocation']}'"
    )
    assert list(by_invocation["run_id"]) == [run_id]


def test_git_commit_is_the_standard_tag_in_a_checkout(store, tmp_path, monkeypatch):
    """MLflow resolves the commit from the main file's repository: a job started from a checkout's code."""
    from mudiff.tracking import job_run

    client, _, _ = store
    repo = tmp_path / "checkout"
    repo.mkdir()
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    (repo / "main.py").write_text("")
    subprocess.run(["git", "add", "main.py"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "x"], cwd=repo, check=True)
    sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True
    ).stdout.strip()
    monkeypatch.setattr("sys.argv", [str(repo / "main.py")])
    from mlflow.tracking.context.registry import _run_context_provider_registry

    for (
        provider
    ) in _run_context_provider_registry:  # a job's process resolves its commit once; this one did already
        getattr(provider, "_cache", {}).clear()
    with job_run({"rule": "scores", "study": "s", "params": {}}) as run:
        pass
    assert client.get_run(run.run_id).data.tags["mlflow.source.git.commit"] == sha


def test_outputs_record_their_run_and_checksums_and_the_policy_holds(store, tmp_path, monkeypatch):
    import torch

    from mudiff.tracking import ARTIFACTS_ENV, INPUTS_ARTIFACT, OUTPUTS_ARTIFACT, job_run, sha256

    client, _, _ = store
    upstream = tmp_path / "up.json"
    with io.current_run("f" * 32):
        io.write_json({"a": 1}, upstream)
    out = {
        "table": "r/t.parquet",
        "metrics": "r/m.json",
        "model": "r/model.pt",
        "figures": "r/figs",
        "big": "r/big.bin",
    }
    monkeypatch.setenv(ARTIFACTS_ENV, json.dumps({"models": "reference", "max_artifact_mb": 0.004}))
    with job_run(
        {"rule": "unlearn", "study": "s", "params": {}, "input": {"up": str(upstream)}, "output": out}
    ) as run:
        io.write_table(pd.DataFrame({"id": [1, 2]}), out["table"])
        io.write_json({"x": 1.5}, out["metrics"])
        io.write_json({"x": 1.5}, "r/data.json", provenance=False)
        torch.save({"w": torch.zeros(2)}, out["model"])
        (tmp_path / "r" / "figs").mkdir()
        (tmp_path / "r" / "figs" / "a.png").write_bytes(b"png")
        (tmp_path / "r" / "big.bin").write_bytes(b"x" * 5000)
    assert io.run_id_of(out["table"]) == io.run_id_of(out["metrics"]) == run.run_id
    assert io.run_id_of("r/data.json") is None and io.run_id_of(out["model"]) is None
    assert list(pd.read_parquet(out["table"]).columns) == ["id"]  # the id is metadata, not a column
    local = client.download_artifacts(run.run_id, OUTPUTS_ARTIFACT, str(tmp_path))
    manifest = json.loads(open(local).read())
    assert set(manifest) == {"r/t.parquet", "r/m.json", "r/model.pt", "r/figs/a.png", "r/big.bin"}
    assert all(e["sha256"] == sha256(p) for p, e in manifest.items())
    assert (
        manifest["r/model.pt"]["artifact"] is None and manifest["r/big.bin"]["artifact"] is None
    )  # by reference
    assert (
        manifest["r/figs/a.png"]["artifact"] == "outputs/figs/a.png"
        and manifest["r/m.json"]["artifact"] == "outputs/m.json"
    )
    copied = {f.path for f in client.list_artifacts(run.run_id, "outputs")}
    assert copied == {"outputs/figs", "outputs/m.json", "outputs/t.parquet"}
    inputs = json.loads(open(client.download_artifacts(run.run_id, INPUTS_ARTIFACT, str(tmp_path))).read())
    assert inputs == {str(upstream): "f" * 32}
    assert client.get_run(run.run_id).data.tags["mudiff.outputs_by_reference"] == "2"
    monkeypatch.setenv(ARTIFACTS_ENV, json.dumps({"models": "copy", "max_artifact_mb": 64}))
    with job_run({"rule": "unlearn", "study": "s", "params": {}, "output": {"model": out["model"]}}) as run:
        pass
    assert {f.path for f in client.list_artifacts(run.run_id, "outputs")} == {"outputs/model.pt"}


def test_the_snakefile_keeps_an_inherited_invocation():
    from mudiff.tracking import INVOCATION_ENV, INVOKER_ENV, invocation_env

    fresh = invocation_env({})
    assert len(fresh[INVOCATION_ENV]) == 32 and fresh[INVOKER_ENV].count(":") == 2
    assert invocation_env({INVOCATION_ENV: "abc"}) == {}


def test_the_audit_refuses_a_folder_that_is_not_a_study_and_a_study_without_runs(store, tmp_path, capsys):
    from mudiff.audit import main

    with pytest.raises(
        SystemExit, match=r"audit: results/nowhere is not a results folder \(run the study first\)"
    ):
        main(["results/nowhere"])
    (tmp_path / "results" / "ghost").mkdir(parents=True)
    with pytest.raises(SystemExit, match=r"audit: no MLflow experiment 'ghost' in sqlite:///"):
        main(["results/ghost"])


def test_a_wrong_artifact_policy_is_refused_by_name():
    from mudiff.config import ConfigError, validate

    with pytest.raises(ConfigError, match=r"'tracking.models': 'cp' is not one of \['reference', 'copy'\]"):
        validate({"name": "s", "tracking": {"models": "cp"}})
    with pytest.raises(ConfigError, match=r"tracking.max_artifact_mb"):
        validate({"name": "s", "tracking": {"max_artifact_mb": 0}})
