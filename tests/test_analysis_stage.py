"""The analysis stage end to end on a synthetic study: a bank, traces of three methods on two
forget sets, evaluations and scores, written as the pipeline writes them (no MLflow)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mudiff.io import read_json, read_table, write_arrays, write_json, write_table
from mudiff.options import build
from mudiff.stages.analysis import AnalysisParams, Params, analyse, run_of

N, K, EPOCHS = 240, 64, 4


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    rng = np.random.default_rng(0)
    ids = np.arange(1000, 1000 + N)
    hardness = rng.normal(size=N)  # planted: memorization tracks how long a sample takes to forget
    mask = rng.random((K, N)) < 0.7
    phi = np.where(mask, rng.normal(4.0, 1.0, (K, N)), rng.normal(-1.0, 1.0, (K, N)))
    write_arrays(
        root / "bank.npz",
        id_train=ids,
        mask=mask,
        phi_train=phi,
        correct_train=phi > 0,
        phi_test=phi[:, :10],
        correct_test=phi[:, :10] > 0,
    )
    scores = pd.DataFrame(
        {
            "id": ids,
            "label": ids % 10,
            "memorization": hardness + 0.3 * rng.normal(size=N),
            "confidence": -hardness + 0.5 * rng.normal(size=N),
            "margin": rng.normal(size=N),
        }
    )
    write_table(scores, root / "scores.parquet")
    traces, evaluations = [], []
    forget_sets = {"memorization_low": ids[:60], "memorization_high": ids[60:120]}
    for method, speed in [
        ("retrain", 3.0),
        ("finetune", 1.0),
        ("neggrad_plus", 1.5),
        ("rum_f:neggrad_plus", 2.0),
    ]:
        for fs, fids in forget_sets.items():
            pos = fids - 1000
            rows = []
            for e in range(EPOCHS + 1):
                # phi falls from IN-like to OUT-like; harder samples fall slower (some never do)
                value = 4.0 - speed * e * np.exp(-hardness[pos]) + 0.2 * rng.normal(size=len(pos))
                rows.append(pd.DataFrame({"epoch": e, "id": fids, "phi": value, "correct": value > 0}))
            path = root / "unlearn" / method / fs / "trace.parquet"
            write_table(pd.concat(rows), path)
            traces.append(str(path))
            ev = {
                "method": method,
                "forget_set": fs,
                "ToW": 0.9 if fs.endswith("low") else 0.8,
                "ToW_MIA": 0.85,
            }
            write_json(ev, root / "evaluate" / method / f"{fs}.json")
            evaluations.append(ev)
    out = {
        k: str(root / "analysis" / f"{k}.{ext}")
        for k, ext in [
            ("difficulty", "parquet"),
            ("agreement", "parquet"),
            ("factors", "parquet"),
            ("factor_verdicts", "parquet"),
            ("predictor", "json"),
            ("findings", "json"),
        ]
    }
    out["figures"] = str(root / "analysis" / "figures")
    metrics = analyse(
        scores,
        dict(np.load(root / "bank.npz")),
        traces,
        pd.DataFrame(evaluations),
        out,
        AnalysisParams(n_boot=100, folds=3),
        {"seconds": {"confidence": 0.5}, "bank_seconds": 50.0},
    )
    return {"root": root, "out": out, "metrics": metrics, "traces": traces}


def test_difficulty_table_stacks_every_run_joined_with_scores(study):
    d = read_table(study["out"]["difficulty"])
    assert len(d) == 4 * 2 * 60
    assert {
        "method",
        "forget_set",
        "id",
        "residual",
        "steps_to_forget",
        "censored",
        "difficulty",
        "memorization",
    } <= set(d.columns)
    assert d["censored"].any() and not d["censored"].all()  # planted: the hardest never cross
    assert d.loc[d["censored"], "difficulty"].min() > d.loc[~d["censored"], "difficulty"].median()


def test_outputs_and_verdicts(study):
    out = study["out"]
    agreement = read_table(out["agreement"])
    assert set(agreement["forget_set"]) == {"memorization_low", "memorization_high"}
    assert "retrain" not in set(agreement["method_a"].dropna()) | set(agreement["method_b"].dropna())
    assert (agreement.loc[agreement["stat"] == "kendall_w", "value"] > 0.5).all()
    verdicts = read_table(out["factor_verdicts"]).set_index("factor")
    assert verdicts.loc["memorization", "algorithm_independent"] and verdicts.loc["memorization", "sign"] == 1
    assert verdicts.loc["confidence", "sign"] == -1
    predictor = read_json(out["predictor"])
    assert set(predictor["methods"]) == {"finetune", "neggrad_plus", "rum_f:neggrad_plus"}
    assert predictor["methods"]["finetune"]["all_features"]["logistic_regression"]["auc"] > 0.8
    # memorization (a bank score) carries the planted signal; confidence alone still carries some
    assert predictor["feature_sets"]["without_bank_features"]["dropped"] == ["memorization"]
    no_bank = predictor["methods"]["finetune"]["without_bank_features"]
    assert (
        "memorization" not in no_bank["features"]
        and "memorization" not in no_bank["logistic_regression"]["importance"]
    )
    assert {"auc.logistic_regression.finetune", "auc_no_bank.logistic_regression.finetune"} <= set(
        study["metrics"]
    )
    findings = {(f["finding"], f["method"]): f for f in read_json(out["findings"])["findings"]}
    assert findings[("ToW falls as memorization of F rises", "finetune")]["reproduced"] is True
    assert findings[("Per-sample difficulty is algorithm-independent", None)]["reproduced"] is True
    assert (
        findings[("Training-dynamics confidence ranks samples close to memorization", None)]["numbers"][
            "speedup_vs_bank"
        ]
        == 100
    )
    json.dumps(read_json(out["findings"])["findings"])
    for name in ("agreement", "factors", "roc", "difficulty"):
        assert (study["root"] / "analysis" / "figures" / f"{name}.png").stat().st_size > 10_000
    assert study["metrics"]["findings_reproduced"] >= 3


def test_run_of_and_params():
    assert run_of("results/s/unlearn/rum_f:neggrad_plus/memorization_mix/trace.parquet") == (
        "rum_f:neggrad_plus",
        "memorization_mix",
    )
    p = build(Params, {"analysis": {"n_boot": 10, "exclude": ["retrain", "finetune"]}})
    assert p.analysis.exclude == ["retrain", "finetune"] and p.analysis.n_boot == 10 and p.analysis.folds == 5
    with pytest.raises(TypeError, match=r"AnalysisConfig: unknown key\(s\) \['nboot'\]"):
        build(Params, {"analysis": {"nboot": 10}})


def test_report_section_renders_every_part(study):
    from mudiff.report.instance_level import render

    out = study["out"]
    text = render(
        read_table(out["agreement"]),
        read_table(out["factor_verdicts"]),
        read_json(out["predictor"]),
        read_json(out["findings"])["findings"],
        {k: f"analysis/figures/{k}.png" for k in ("agreement", "factors", "roc", "difficulty")},
    )
    assert "Kendall's W" in text and "memorization" in text and "AUC" in text
    assert "AUC without bank" in text and "drops memorization" in text
    assert "ToW falls as memorization of F rises (finetune): **reproduced**" in text
    assert text.count("![") == 4
