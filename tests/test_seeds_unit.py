"""Aggregation over replicate seeds, method variants and MLflow key names: known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mudiff import methods
from mudiff.analysis.findings import CONFIDENCE, INDEPENDENCE, across_seeds
from mudiff.analysis.seeds import by_seed, evaluation_summary, formatted, seed_of, t_errorbar
from mudiff.tracking import flatten, mlflow_key


def test_summary_is_mean_and_t_interval_per_cell():
    ev = pd.DataFrame(
        {
            "seed": [0, 1, 2, 0, 1, 2],
            "method": ["a"] * 3 + ["b"] * 3,
            "forget_set": ["f"] * 6,
            "ToW": [0.5, 0.6, 0.7, 0.9, 0.9, 0.9],
        }
    )
    summary = evaluation_summary(ev).set_index("method")
    half = stats.t.ppf(0.975, 2) * 0.1 / np.sqrt(3)
    assert summary.loc["a", "ToW"] == pytest.approx(0.6) and summary.loc["a", "seeds"] == 3
    assert summary.loc["a", "ToW_ci_low"] == pytest.approx(0.6 - half) and summary.loc[
        "a", "ToW_ci_high"
    ] == pytest.approx(0.6 + half)
    assert (
        summary.loc["b", "ToW_ci_low"] == pytest.approx(0.9) == summary.loc["b", "ToW_ci_high"]
    )  # no spread, no width
    assert np.isnan(summary.loc["a", "FA"])  # a metric the rows lack
    text = formatted(summary.reset_index(), ("ToW",)).set_index("method")["ToW"]
    assert text["a"] == f"0.600 [{0.6 - half:.3f}, {0.6 + half:.3f}]"
    one = formatted(evaluation_summary(ev[ev["seed"] == 0]), ("ToW",))
    assert list(one["ToW"]) == ["0.500", "0.900"]  # one seed: no interval


def test_summary_keeps_cells_whose_keys_are_missing():
    ev = pd.DataFrame({"seed": [0, 1], "method": ["a", "a"], "forget_set": [None, None], "ToW": [1.0, 0.8]})
    assert len(evaluation_summary(ev)) == 1


def test_seed_of_paths_and_t_errorbar():
    assert seed_of("results/s/seed_12/evaluate/finetune/random.json") == 12
    assert (
        seed_of("results/seed_7/seed_0/evaluate/finetune/random.json") == 0
    )  # a study named like a seed folder
    with pytest.raises(ValueError, match="replicate"):
        seed_of("results/s/evaluate/finetune/random.json")
    assert by_seed(["r/seed_1/a", "r/seed_0/b", "r/seed_1/c"]) == {
        1: ["r/seed_1/a", "r/seed_1/c"],
        0: ["r/seed_0/b"],
    }
    assert t_errorbar([0.5]) == (0.5, 0.5)
    lo, hi = t_errorbar([1.0, 3.0])
    assert (lo + hi) / 2 == pytest.approx(2.0) and hi - lo == pytest.approx(
        2 * stats.t.ppf(0.975, 1) * np.sqrt(2) / np.sqrt(2)
    )


def _per_seed(rhos, medians, reproduced):
    return {
        s: [
            {"finding": CONFIDENCE, "method": None, "reproduced": abs(r) >= 0.5, "numbers": {"spearman": r}},
            {
                "finding": INDEPENDENCE,
                "method": None,
                "reproduced": ok,
                "numbers": {"median_mean_spearman": m, "per_forget_set": {"f": {"ci_low": 0.1}}},
            },
        ]
        for s, (r, m, ok) in enumerate(zip(rhos, medians, reproduced))
    }


def test_findings_over_seeds_judge_the_means_and_count_the_seeds():
    ev = pd.DataFrame(
        [
            {"seed": s, "method": "finetune", "forget_set": f"memorization_{lv}", "ToW": t, "ToW_MIA": t}
            for s, shift in ((0, 0.0), (1, 0.02))
            for lv, t in (("low", 0.9 + shift), ("high", 0.5 + shift))
        ]
    )
    per_seed = _per_seed(rhos=[-0.6, -0.3], medians=[0.8, 0.9], reproduced=[True, True])
    per_seed[0].append(
        {
            "finding": "ToW falls as memorization of F rises",
            "method": "finetune",
            "reproduced": True,
            "numbers": {},
        }
    )
    found = {(f["finding"], f["method"]): f for f in across_seeds(ev, per_seed)}
    memo = found[("ToW falls as memorization of F rises", "finetune")]
    assert memo["reproduced"] is True and memo["seeds"] == 2 and memo["seeds_reproduced"] == 1
    assert (
        memo["numbers"]["ToW"]["low"]["mean"] == pytest.approx(0.91)
        and "held in 1 of 2 seeds" in memo["text"]
    )
    conf = found[(CONFIDENCE, None)]
    assert (
        conf["numbers"]["spearman"]["mean"] == pytest.approx(-0.45) and conf["reproduced"] is False
    )  # |mean| < 0.5
    assert conf["seeds_reproduced"] == 1
    assert "x less compute" not in conf["text"] and conf["numbers"]["cost"] is None  # no timings: no cost
    timed = _per_seed(rhos=[-0.6, -0.7], medians=[0.8, 0.9], reproduced=[True, True])
    for s, sec in ((0, 1e-4), (1, 3e-4)):
        timed[s][0]["numbers"] |= {"seconds": sec, "bank_seconds": 40.0 + 20 * s, "no_extra_training": True}
    conf = {f["finding"]: f for f in across_seeds(ev, timed)}[CONFIDENCE]
    assert (
        conf["numbers"]["cost"]["seconds"] == pytest.approx(2e-4)
        and conf["numbers"]["cost"]["speedup_vs_bank"] is None
    )
    assert "x less compute" not in conf["text"] and "no extra training" in conf["text"]
    indep = found[(INDEPENDENCE, None)]
    assert indep["reproduced"] is True and indep["numbers"]["median_mean_spearman"]["mean"] == pytest.approx(
        0.85
    )
    assert (
        found[("ToW falls as memorization of F rises", "neggrad_plus")]["reproduced"] is None
    )  # not run: not measured


def test_method_variants_run_their_base_method():
    assert (
        methods.base_name("rsu:finetune@random") == "rsu:finetune"
        and methods.base_name("finetune") == "finetune"
    )
    assert methods.split("rsu:finetune@random") == ("rsu", "finetune")
    assert methods.get("finetune@fast") is methods.get("finetune")
    assert methods.modules("rum_f:salun@x") == methods.modules("rum_f:salun")
    with pytest.raises(ValueError, match="variant"):
        methods.split("finetune@two words")
    with pytest.raises(ValueError, match="unknown unlearning method"):
        methods.split("nomethod@x")


def test_mlflow_keys_keep_allowed_characters_only():
    assert mlflow_key("ToW.rsu:finetune@random.risk_ranked") == "ToW.rsu:finetune/random.risk_ranked"
    assert mlflow_key("ToW.neggrad@plus.random") != mlflow_key(
        "ToW.neggrad_plus.random"
    )  # variants stay distinct
    assert mlflow_key("a b(c)") == "a b_c_"
    assert mlflow_key("hyper.lr") == "hyper.lr"
    assert flatten({"rsu_orders": {"rsu:finetune@random": "random"}}) == {
        "rsu_orders.rsu:finetune/random": "random"
    }


def test_rum_finding_counts_seeds_not_mix_sets_and_ignores_rum_variants():
    from mudiff.analysis.findings import rum_findings

    rows = [
        {"seed": s, "method": m, "forget_set": fs, "ToW": t + 0.01 * s}
        for s in (0, 1)
        for fs in ("memorization_mix", "confidence_mix")
        for m, t in (
            ("neggrad_plus", 0.8),
            ("rum_f:neggrad_plus", 0.9),
            ("shuffle:neggrad_plus", 0.85),
            ("rum", 0.95),
            ("rum@other", 0.99),
        )
    ]
    found = {f["method"]: f for f in rum_findings(pd.DataFrame(rows))}
    assert found["neggrad_plus"]["numbers"]["rum_f"]["n"] == 2  # two seeds, each the mean of two mix sets
    assert found["rum"]["reproduced"] is True and "rum@other" not in found["rum"]["numbers"]
