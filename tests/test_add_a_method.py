"""docs/add_a_method.md, end to end: its code blocks, added to a copy of the repo, run through Snakemake."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from studyrepo import REPO, copy_repo, snakemake

DOC = REPO / "docs" / "add_a_method.md"
BLOCK = re.compile(r"^```\w+ file=(\S+)(?: insert-after=([^\n]+))?\n(.*?)^```$", re.S | re.M)


def blocks() -> list[tuple[str, str | None, str]]:
    """(path, line to insert after or None for a whole file, text) of the doc's file blocks."""
    return [(m.group(1), m.group(2), m.group(3)) for m in BLOCK.finditer(DOC.read_text())]


def test_the_doc_has_the_method_its_registration_and_a_config():
    found = blocks()
    assert [p for p, _, _ in found] == [
        "workflow/mudiff/methods/reset_head.py",
        "workflow/mudiff/methods/registry.py",
        "config/try_reset_head.yaml",
    ]
    assert found[1][1] == "METHODS = {" and found[1][2].count("\n") == 1  # one registration line


@pytest.mark.e2e
def test_the_docs_example_method_runs_through_the_pipeline(tmp_path):
    work = copy_repo(tmp_path / "repo")
    for path, after, text in blocks():
        target = work / path
        if after is None:
            assert not target.exists(), path
            target.write_text(text)
        else:
            source = target.read_text()
            assert source.count(after + "\n") == 1, after
            target.write_text(source.replace(after + "\n", after + "\n" + text))
    config = next(p for p, _, _ in blocks() if p.startswith("config/"))
    study = yaml.safe_load((work / config).read_text())["name"]
    snakemake(work, "--cores", "2", "--configfile", config)

    results = work / "results" / study
    metrics = json.loads((results / "seed_0" / "evaluate" / "reset_head" / "random.json").read_text())
    assert metrics["method"] == "reset_head" and 0.0 <= metrics["ToW"] <= 1.0 and metrics["cost_ratio"] > 0
    record = json.loads(
        (results / "seed_0" / "unlearn" / "reset_head" / "random" / "record.json").read_text()
    )
    assert record["params"]["epochs"] == 2 and record["params"]["init_std"] == 0.01
    assert "reset_head" in (results / "report.md").read_text()

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{work / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name(study).experiment_id], max_results=100)
    mine = [r for r in runs if r.data.tags.get("mudiff.wildcard.method") == "reset_head"]
    assert sorted(r.data.tags["mudiff.rule"] for r in mine) == ["evaluate", "unlearn"]
    assert {r.info.status for r in mine} == {"FINISHED"}
    unlearn = next(r for r in mine if r.data.tags["mudiff.rule"] == "unlearn")
    # the forget set's state before unlearning and after each of the 2 epochs
    assert len(client.get_metric_history(unlearn.info.run_id, "forget_acc")) == 3
