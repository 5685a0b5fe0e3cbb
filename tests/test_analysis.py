"""Instance-level analysis: difficulty, agreement, factors, predictor, intervals, findings."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mudiff.analysis.agreement import agreement, agreement_table, bootstrap, kendalls_w, spearman_matrix
from mudiff.analysis.difficulty import (
    difficulty_rank,
    difficulty_table,
    out_median,
    residual,
    steps_to_forget,
)
from mudiff.analysis.factors import factor_correlations, factor_verdicts, spearman_ci
from mudiff.analysis.findings import (
    all_findings,
    confidence_finding,
    entanglement_findings,
    independence_finding,
    memorization_findings,
    rum_findings,
)
from mudiff.analysis.intervals import mean_ci, over_seeds
from mudiff.analysis.predictor import auc_bootstrap, hard_labels, predict_hard

# ---------- difficulty ----------


def test_residual_is_lira_by_hand_on_gaussians():
    rng = np.random.default_rng(0)
    k, n = 400, 5
    mask = rng.random((k, n)) < 0.5
    phi = np.where(mask, rng.normal(3.0, 1.0, (k, n)), rng.normal(-1.0, 0.5, (k, n)))
    query = np.array([3.0, -1.0, 0.5, 5.0, -3.0])
    got = residual(query, phi, mask)
    for i in range(n):
        pin, pout = phi[mask[:, i], i], phi[~mask[:, i], i]
        # LiRA's code: centre = median, spread = std (ddof 0)
        want = stats.norm.logpdf(query[i], np.median(pin), pin.std()) - stats.norm.logpdf(
            query[i], np.median(pout), pout.std()
        )
        assert got[i] == pytest.approx(want, rel=1e-9)
    assert got[0] > 0 > got[1]  # IN-like query looks IN, OUT-like looks OUT


# bank: 5 models x 4 samples (ids 10, 20, 30, 40); OUT phis: id10 {0, 2} -> median 1,
# id20 {-1, 1, 3} -> 1, id30 {5, 5} -> 5. id40 is IN for every model: no threshold.
MASK = np.array([[1, 0, 0, 1], [0, 1, 1, 1], [1, 0, 1, 1], [0, 0, 0, 1], [1, 1, 1, 1]], dtype=bool)
PHI = np.array([[9, -1, 5, 9], [0, 9, 9, 9], [9, 1, 9, 9], [2, 3, 5, 9], [9, 9, 9, 9]], dtype=float)
IDS = np.array([10, 20, 30, 40])


def _trace(rows: dict[int, list[float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"epoch": e, "id": i, "phi": v, "correct": True}
            for i, vals in rows.items()
            for e, v in enumerate(vals)
        ]
    )


def test_out_median_by_hand():
    np.testing.assert_array_equal(out_median(PHI, MASK)[:3], [1.0, 1.0, 5.0])
    assert np.isnan(out_median(PHI, MASK)[3])


def test_steps_to_forget_hand_made_trace():
    trace = _trace(
        {
            10: [3.0, 2.0, 0.5, 2.0],  # first below 1 at epoch 2 (rises again later: first crossing counts)
            20: [0.0, 0.0, 0.0, 0.0],  # already below before unlearning: 0
            30: [9.0, 8.0, 7.0, 6.0],  # never below 5: censored
            40: [0.0, 0.0, 0.0, 0.0],  # no OUT model: unmeasured, not censored
        }
    )
    got = steps_to_forget(trace, PHI, MASK, IDS).set_index("id")
    assert got.loc[10, "steps_to_forget"] == 2
    assert got.loc[20, "steps_to_forget"] == 0
    assert np.isnan(got.loc[30, "steps_to_forget"]) and got.loc[30, "censored"]
    assert not got.loc[10, "censored"] and not got.loc[20, "censored"]
    assert np.isnan(got.loc[40, "steps_to_forget"]) and not got.loc[40, "censored"]
    assert (got["max_epoch"] == 3).all()


def test_steps_to_forget_refuses_unknown_ids_and_holes():
    with pytest.raises(ValueError, match="not in the bank"):
        steps_to_forget(_trace({99: [0.0, 0.0]}), PHI, MASK, IDS)
    holed = _trace({10: [3.0, 2.0], 20: [0.0, 0.0]}).iloc[:-1]
    with pytest.raises(ValueError, match="every forget sample"):
        steps_to_forget(holed, PHI, MASK, IDS)
    twice = pd.concat([_trace({10: [3.0, 2.0]}), _trace({10: [3.0]})])
    with pytest.raises(ValueError, match="twice"):
        steps_to_forget(twice, PHI, MASK, IDS)


def test_censored_sample_ranks_hardest_and_is_kept():
    trace = _trace({10: [3.0, 2.0, 0.5, 0.5], 20: [0.0, 0.0, 0.0, 0.0], 30: [9.0, 8.0, 7.0, 6.0]})
    table = difficulty_table(trace, PHI, MASK, IDS).set_index("id")
    assert list(table.index) == [10, 20, 30]
    assert table.loc[30, "censored"]
    assert table["difficulty"].idxmax() == 30 and table.loc[30, "difficulty"] == 1.0
    assert table["difficulty"].idxmin() == 20
    # residual is U-LiRA of the last epoch's phi
    assert table.loc[10, "residual"] == pytest.approx(residual(np.array([0.5]), PHI[:, :1], MASK[:, :1])[0])


def test_difficulty_rank_censored_last_ties_by_residual_and_shared():
    steps = np.array([1.0, 0.0, np.nan, np.nan, np.nan, 1.0])
    censored = np.array([False, False, True, True, True, False])
    res = np.array([0.0, 5.0, 2.0, 2.0, 1.0, 3.0])
    got = difficulty_rank(steps, censored, res)
    # order: id1 (0 steps), id0 (1, res 0), id5 (1, res 3), id4 (censored, res 1), id2 = id3 (censored, res 2, tie)
    np.testing.assert_allclose(got * 6, [2, 1, 5.5, 5.5, 4, 3])
    assert np.isnan(difficulty_rank(np.array([np.nan]), np.array([False]), np.array([1.0]))[0])


# ---------- agreement ----------


def test_kendalls_w_identical_and_opposite():
    x = np.arange(10.0)
    assert kendalls_w(np.stack([x, x, x], 1)) == pytest.approx(1.0)
    assert kendalls_w(np.stack([x, -x], 1)) == pytest.approx(0.0)


def test_kendalls_w_with_ties_by_hand():
    # rater A ranks 1, 2, 3; rater B ties the first two: 1.5, 1.5, 3. Rank sums 2.5, 3.5, 6 (mean 4):
    # S = 6.5; T_B = 2^3 - 2 = 6; W = 12 S / (m^2 (n^3 - n) - m T) = 78 / (96 - 12).
    d = np.array([[1, 7], [2, 7], [3, 9]], dtype=float)
    assert kendalls_w(d) == pytest.approx(78 / 84)


def test_spearman_matrix_known_values():
    a = np.array([1, 2, 3, 4, 5.0])
    d = np.stack([a, a[::-1], [1, 2, 3, 5, 4]], 1)
    rho = spearman_matrix(d)
    assert rho[0, 1] == pytest.approx(-1.0)
    assert rho[0, 2] == pytest.approx(0.9)  # 1 - 6 * 2 / (5 * 24)
    np.testing.assert_allclose(np.diag(rho), 1.0)


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    rng = np.random.default_rng(1)
    latent = rng.normal(size=300)
    d = latent[:, None] + 0.7 * rng.normal(size=(300, 3))
    table = agreement(d, ["a", "b", "c"], n_boot=300, seed=3)
    again = agreement(d, ["a", "b", "c"], n_boot=300, seed=3)
    pd.testing.assert_frame_equal(table, again)
    assert ((table["ci_low"] <= table["value"]) & (table["value"] <= table["ci_high"])).all()
    w = table[table["stat"] == "kendall_w"].iloc[0]
    assert 0.5 < w.value < 1 and w.ci_high - w.ci_low < 0.2
    # the replicate values agree with the plain functions on a replicate
    rho_b, w_b = bootstrap(d, n_boot=2, seed=0)
    idx = np.random.default_rng(0).integers(0, 300, size=(2, 300))
    assert w_b[1] == pytest.approx(kendalls_w(d[idx[1]]))
    np.testing.assert_allclose(rho_b[0], spearman_matrix(d[idx[0]]))


def test_agreement_table_uses_shared_samples_and_excludes_retrain():
    rows = []
    for m, shift in [("finetune", 0.0), ("neggrad_plus", 0.1), ("retrain", 0.0)]:
        for i in range(20):
            rows.append({"method": m, "forget_set": "random", "id": i, "difficulty": i + shift})
    df = pd.DataFrame(rows)
    df.loc[(df["method"] == "finetune") & (df["id"] == 0), "difficulty"] = np.nan
    table = agreement_table(df, n_boot=50)
    assert set(table["n_methods"]) == {2} and set(table["n_samples"]) == {19}
    assert table.loc[table["stat"] == "kendall_w", "value"].iloc[0] == pytest.approx(1.0)


# ---------- factors ----------


def _planted_difficulty(n=400, seed=0):
    rng = np.random.default_rng(seed)
    ids = np.arange(n)
    mem = rng.normal(size=n)
    margin = rng.normal(size=n)
    scores = pd.DataFrame(
        {"id": ids, "label": ids % 3, "memorization": mem, "margin": margin, "noise": rng.normal(size=n)}
    )
    rows = []
    for method, sign in [("finetune", 1), ("neggrad_plus", -1), ("scrub", 1)]:
        latent = mem + sign * 0.8 * margin + 0.5 * rng.normal(size=n)
        for fs, part in [("a", ids[: n // 2]), ("b", ids[n // 2 :])]:
            rows.append(
                pd.DataFrame(
                    {
                        "method": method,
                        "forget_set": fs,
                        "id": part,
                        "steps_to_forget": 0.0,
                        "censored": False,
                        "residual": latent[part],
                    }
                )
            )
    df = pd.concat(rows, ignore_index=True)
    df["difficulty"] = df.groupby(["method", "forget_set"])["residual"].rank(pct=True)
    return df, scores


def test_factor_verdict_on_planted_data():
    df, scores = _planted_difficulty()
    corr = factor_correlations(df, scores)
    verdicts = factor_verdicts(corr).set_index("factor")
    assert verdicts.loc["memorization", "algorithm_independent"]
    assert verdicts.loc["memorization", "agrees_with_spec"]  # high memorization = hard (+)
    assert (
        not verdicts.loc["margin", "sign_consistent"] and not verdicts.loc["margin", "algorithm_independent"]
    )
    assert not verdicts.loc["noise", "algorithm_independent"]
    assert "label" not in set(corr["factor"])


def test_spearman_ci_covers_and_excludes():
    rng = np.random.default_rng(0)
    x = rng.normal(size=500)
    strong = spearman_ci(x, x + 0.5 * rng.normal(size=500))
    null = spearman_ci(x, rng.normal(size=500))
    assert strong["ci_low"] > 0.5 and strong["ci_low"] < strong["rho"] < strong["ci_high"]
    assert null["ci_low"] < 0 < null["ci_high"]


# ---------- predictor ----------


def test_predictor_auc_planted_signal_and_shuffled_labels():
    df, scores = _planted_difficulty(n=300, seed=1)
    df = df[df["method"] == "finetune"]
    planted = predict_hard(df, scores, ["memorization", "margin", "noise"], folds=4, n_boot=200)["finetune"][
        "all_features"
    ]
    for kind in ("logistic_regression", "gradient_boosting"):
        assert planted[kind]["auc"] > 0.85
        assert planted[kind]["auc_ci_low"] < planted[kind]["auc"] < planted[kind]["auc_ci_high"]
    coef = planted["logistic_regression"]["importance"]
    assert coef["memorization"] > abs(coef["noise"])
    perm = planted["gradient_boosting"]["importance"]
    assert perm["memorization"] > perm["noise"]
    shuffled = df.copy()
    shuffled["residual"] = np.random.default_rng(5).permutation(shuffled["residual"].to_numpy())
    shuffled["difficulty"] = shuffled.groupby("forget_set")["residual"].rank(pct=True)
    null = predict_hard(shuffled, scores, ["memorization", "margin", "noise"], folds=4, n_boot=200)[
        "finetune"
    ]
    for fs in ("all_features", "without_bank_features"):
        for kind in ("logistic_regression", "gradient_boosting"):
            assert abs(null[fs][kind]["auc"] - 0.5) < 0.12


def test_predictor_without_bank_features_known_answer():
    """Difficulty driven by a bank score only: with it the AUC is high, without it about 0.5."""
    rng = np.random.default_rng(3)
    n = 300
    ids = np.arange(n)
    scores = pd.DataFrame(
        {
            "id": ids,
            "label": ids % 3,
            "privacy_risk": rng.normal(size=n),
            "margin": rng.normal(size=n),
            "noise": rng.normal(size=n),
        }
    )
    latent = scores["privacy_risk"].to_numpy() + 0.3 * rng.normal(size=n)
    df = pd.concat(
        [
            pd.DataFrame(
                {
                    "method": "finetune",
                    "forget_set": fs,
                    "id": part,
                    "steps_to_forget": 0.0,
                    "censored": False,
                    "residual": latent[part],
                }
            )
            for fs, part in [("a", ids[: n // 2]), ("b", ids[n // 2 :])]
        ],
        ignore_index=True,
    )
    df["difficulty"] = df.groupby("forget_set")["residual"].rank(pct=True)
    r = predict_hard(df, scores, ["privacy_risk", "margin", "noise"], folds=4, n_boot=200)["finetune"]
    assert (
        r["all_features"]["features"] == ["privacy_risk", "margin", "noise"]
        and r["all_features"]["dropped"] == []
    )
    assert r["without_bank_features"]["features"] == ["margin", "noise"]
    assert r["without_bank_features"]["dropped"] == ["privacy_risk"]
    for kind in ("logistic_regression", "gradient_boosting"):
        assert r["all_features"][kind]["auc"] > 0.85
        assert abs(r["without_bank_features"][kind]["auc"] - 0.5) < 0.12
        assert "privacy_risk" not in r["without_bank_features"][kind]["importance"]
    # Only bank features: nothing is left to fit without them; no bank feature: the same fit twice.
    only = predict_hard(df, scores, ["privacy_risk"], folds=4, n_boot=20)["finetune"]
    assert only["without_bank_features"]["skipped"] == "no feature left"
    none = predict_hard(df, scores, ["margin", "noise"], folds=4, n_boot=20)["finetune"]
    assert none["without_bank_features"]["logistic_regression"] == none["all_features"]["logistic_regression"]


def test_predictor_refuses_outcome_features_and_excludes_retrain():
    df, scores = _planted_difficulty(n=60)
    scores = scores.assign(residual=0.0)
    with pytest.raises(ValueError, match="pre-unlearning"):
        predict_hard(df, scores, ["memorization", "residual"], folds=3, n_boot=10)
    retrain = df.assign(method="retrain")
    assert "retrain" not in predict_hard(
        pd.concat([df, retrain]), scores, ["memorization"], folds=3, n_boot=10
    )


def test_hard_labels_top_third_or_censored():
    df = pd.DataFrame(
        {
            "method": "m",
            "forget_set": "f",
            "difficulty": np.arange(1, 10) / 9,
            "censored": [True] + [False] * 8,
        }
    )
    np.testing.assert_array_equal(hard_labels(df).to_numpy(), [True] + [False] * 5 + [True] * 3)


def test_auc_bootstrap_brackets_sklearn_auc():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.random(200) < 0.4
    p = y + rng.normal(size=200)
    lo, hi = auc_bootstrap(y, p, n_boot=500)
    assert lo < roc_auc_score(y, p) < hi and hi - lo < 0.3


# ---------- intervals ----------


def test_mean_ci_t_interval_by_hand():
    got = mean_ci([1.0, 2.0, 3.0])
    half = stats.t.ppf(0.975, 2) * 1.0 / math.sqrt(3)
    assert (
        got["mean"] == 2.0
        and got["ci_low"] == pytest.approx(2 - half)
        and got["ci_high"] == pytest.approx(2 + half)
    )
    one = mean_ci([0.7, np.nan])
    assert one["mean"] == 0.7 and one["n"] == 1 and np.isnan(one["ci_low"])
    table = over_seeds(pd.DataFrame({"method": ["a", "a", "b"], "ToW": [0.8, 1.0, 0.5]}), ["method"], "ToW")
    assert table.set_index("method").loc["a", "mean"] == pytest.approx(0.9)


# ---------- findings ----------


def _evaluation(tow_by_level: dict[str, float], methods=("finetune", "neggrad_plus"), score="memorization"):
    names = {lv: (f"es_{lv}" if score == "entanglement" else f"{score}_{lv}") for lv in tow_by_level}
    return pd.DataFrame(
        [
            {"method": m, "forget_set": names[lv], "ToW": t, "ToW_MIA": t}
            for m in methods
            for lv, t in tow_by_level.items()
        ]
    )


def test_memorization_finding_reproduced_when_tow_falls_not_when_it_rises():
    falls = memorization_findings(_evaluation({"low": 0.95, "mid": 0.9, "high": 0.8}))
    rises = memorization_findings(_evaluation({"low": 0.8, "mid": 0.9, "high": 0.95}))
    assert [f["reproduced"] for f in falls] == [True, True]
    assert [f["reproduced"] for f in rises] == [False, False]
    assert "**not reproduced**" in rises[0]["text"] and "0.950" in rises[0]["text"]


def test_findings_not_measured_without_the_forget_sets():
    ev = pd.DataFrame([{"method": "finetune", "forget_set": "random", "ToW": 0.9, "ToW_MIA": 0.9}])
    found = all_findings(ev)
    assert all(f["reproduced"] is None for f in found)
    assert all("not testable here" in f["text"] for f in found)


def test_inert_runs_make_a_finding_not_testable_and_are_named():
    from mudiff.analysis.findings import rum_findings

    ev = _evaluation({"low": 0.95, "high": 0.8})
    ev["inert"] = False
    ev.loc[(ev["method"] == "finetune") & (ev["forget_set"] == "memorization_high"), "inert"] = True
    got = {f["method"]: f for f in memorization_findings(ev)}
    assert got["finetune"]["reproduced"] is None
    assert (
        "not testable here" in got["finetune"]["text"]
        and "finetune on memorization_high" in got["finetune"]["text"]
    )
    assert got["neggrad_plus"]["reproduced"] is True
    mix = pd.DataFrame(
        [
            {"method": m, "forget_set": "memorization_mix", "ToW": t, "inert": i}
            for m, t, i in (
                ("rum_f:finetune", 0.9, False),
                ("finetune", 0.8, True),
                ("shuffle:finetune", 0.7, False),
            )
        ]
    )
    (rum,) = rum_findings(mix)
    assert rum["reproduced"] is None and "finetune" in rum["text"]


def test_levels_of_one_population_are_not_testable():
    ev = _evaluation({"low": 0.95, "mid": 0.9, "high": 0.8})
    one = {"memorization_high": ["memorization_low"], "memorization_low": ["memorization_high"]}
    assert all(
        f["reproduced"] is None and "one population" in f["text"]
        for f in memorization_findings(ev, populations=one)
    )
    mid_only = {"memorization_mid": ["memorization_low"], "memorization_low": ["memorization_mid"]}
    found = memorization_findings(ev, populations=mid_only)
    assert all(f["reproduced"] is True and "mid left out" in f["text"] for f in found)


def test_independence_needs_three_non_inert_methods():
    from mudiff.analysis.findings import independence_finding

    rows = [
        {
            "forget_set": "memorization_mix",
            "stat": s,
            "method_a": None,
            "method_b": None,
            "value": 0.9,
            "ci_low": 0.8,
            "ci_high": 0.95,
            "n_samples": 43,
            "n_methods": 2,
        }
        for s in ("mean_spearman", "kendall_w")
    ]
    two = independence_finding(pd.DataFrame(rows), left_out="; left out 5 inert run(s): x")
    assert two["reproduced"] is None and "at least 3 non-inert" in two["text"] and "left out 5" in two["text"]
    three = independence_finding(pd.DataFrame([{**r, "n_methods": 3} for r in rows]))
    assert three["reproduced"] is True


def test_rsu_finding_by_order_and_inert_orders():
    from mudiff.analysis.findings import rsu_findings

    orders = {"rsu:finetune": "easy_to_hard", "rsu:finetune@h": "hard_to_easy", "rsu:finetune@r": "random"}
    ev = pd.DataFrame(
        [
            {"method": m, "forget_set": "risk_ranked", "ToW": t, "inert": False}
            for m, t in zip(orders, (0.9, 0.8, 0.85))
        ]
    )
    (f,) = rsu_findings(ev, orders)
    assert f["reproduced"] is True and f["method"] == "finetune"
    ev.loc[1, "inert"] = True
    assert rsu_findings(ev, orders)[0]["reproduced"] is None
    assert rsu_findings(ev, {})[0]["reproduced"] is None


def test_entanglement_finding_per_method():
    ev = _evaluation({"low": 0.9, "high": 0.7}, score="entanglement")
    ev.loc[(ev["method"] == "neggrad_plus") & (ev["forget_set"] == "es_high"), "ToW"] = 0.99
    got = {f["method"]: f["reproduced"] for f in entanglement_findings(ev)}
    assert got == {"finetune": True, "neggrad_plus": False}


def test_findings_average_over_seeds_with_intervals():
    ev = pd.concat(
        [_evaluation({"low": 0.9, "high": 0.8}, methods=("finetune",)).assign(seed=s) for s in range(3)]
    )
    ev["ToW"] += np.tile([0.0, 0.01, 0.02], 2).repeat(1)[: len(ev)]
    f = memorization_findings(ev, methods=("finetune",))[0]
    assert f["numbers"]["ToW"]["low"]["n"] == 3 and np.isfinite(f["numbers"]["ToW"]["low"]["ci_low"])


def test_rum_finding():
    rows = [
        ("neggrad_plus", 0.80),
        ("rum_f:neggrad_plus", 0.90),
        ("shuffle:neggrad_plus", 0.85),
        ("rum", 0.7),
    ]
    ev = pd.DataFrame(
        [{"method": m, "forget_set": "memorization_mix", "ToW": t, "ToW_MIA": t} for m, t in rows]
    )
    got = {f["method"]: f["reproduced"] for f in rum_findings(ev)}
    assert got == {"neggrad_plus": True, "rum": False}
    ev.loc[ev["method"] == "shuffle:neggrad_plus", "ToW"] = 0.95
    assert rum_findings(ev)[0]["reproduced"] is False


def test_confidence_finding():
    rng = np.random.default_rng(0)
    mem = rng.normal(size=200)
    close = confidence_finding(
        pd.DataFrame({"memorization": mem, "confidence": -mem + 0.3 * rng.normal(size=200)})
    )
    far = confidence_finding(pd.DataFrame({"memorization": mem, "confidence": rng.normal(size=200)}))
    assert close["reproduced"] is True and close["numbers"]["spearman"] < -0.8
    assert far["reproduced"] is False
    assert confidence_finding(pd.DataFrame({"memorization": mem}))["reproduced"] is None


def test_confidence_cost_near_zero_time_gives_no_ratio():
    """A training-dynamics score's own time (a mean over recorded arrays) is ~0 s: no ratio, the
    seconds and 'no extra training' instead; a measurable time keeps its ratio."""
    from mudiff.analysis.proxies import MIN_MEASURABLE_SECONDS, NO_EXTRA_TRAINING, score_cost, time_ratio

    assert time_ratio(MIN_MEASURABLE_SECONDS / 100, 50.0) is None and time_ratio(None, 50.0) is None
    assert time_ratio(0.5, 50.0) == pytest.approx(0.01) and time_ratio(0.5, 0.0) is None
    mem = np.random.default_rng(0).normal(size=100)
    scores = pd.DataFrame({"memorization": mem, "confidence": -mem})
    tiny = confidence_finding(scores, cost=score_cost("confidence", 1.3e-4, 50.0))
    assert tiny["numbers"]["speedup_vs_bank"] is None and tiny["numbers"]["seconds"] == pytest.approx(1.3e-4)
    assert tiny["numbers"]["no_extra_training"] is True
    assert (
        "x less compute" not in tiny["text"]
        and NO_EXTRA_TRAINING in tiny["text"]
        and "0.00013 s" in tiny["text"]
    )
    timed = confidence_finding(scores, cost=score_cost("confidence", 0.5, 50.0))
    assert (
        timed["numbers"]["speedup_vs_bank"] == pytest.approx(100)
        and "100x less compute than the bank" in timed["text"]
    )
    assert confidence_finding(scores)["numbers"]["speedup_vs_bank"] is None
    assert score_cost("grad_norm", 2.0, 50.0)["no_extra_training"] is False


def test_independence_finding_from_agreement():
    rng = np.random.default_rng(0)
    latent = rng.normal(size=200)
    agree = agreement(latent[:, None] + 0.3 * rng.normal(size=(200, 3)), ["a", "b", "c"], n_boot=100).assign(
        forget_set="x"
    )
    disagree = agreement(rng.normal(size=(200, 3)), ["a", "b", "c"], n_boot=100).assign(forget_set="x")
    assert independence_finding(agree)["reproduced"] is True
    assert independence_finding(disagree)["reproduced"] is False
    assert independence_finding(None)["reproduced"] is None


def test_entanglement_finding_follows_measured_es_not_slice_labels():
    # slice labels say low < mid < high, but the measured ES orders them high < low < mid
    ev = _evaluation({"low": 0.95, "mid": 0.94, "high": 0.99}, score="entanglement")
    es = {"es_low": 115.9, "es_mid": 152.7, "es_high": 88.7}
    by_label = {f["method"]: f["reproduced"] for f in entanglement_findings(ev)}
    by_es = {f["method"]: f for f in entanglement_findings(ev, es)}
    assert by_label == {"finetune": False, "neggrad_plus": False}  # ToW(es_high) > ToW(es_low)
    assert all(f["reproduced"] is True for f in by_es.values())  # ToW at ES 152.7 (0.94) < at ES 88.7 (0.99)
    assert "not in ES order" in by_es["finetune"]["text"]
    flipped = _evaluation({"low": 0.95, "mid": 0.99, "high": 0.94}, score="entanglement")
    assert all(f["reproduced"] is False for f in entanglement_findings(flipped, es))


def test_permutation_auc_drop_matches_sklearn_and_ignores_unused_features():
    from sklearn.inspection import permutation_importance
    from sklearn.linear_model import LogisticRegression

    from mudiff.analysis.predictor import permutation_auc_drop

    rng = np.random.default_rng(0)
    x = pd.DataFrame({"signal": rng.normal(size=300), "noise": rng.normal(size=300)})
    y = (x["signal"] + 0.5 * rng.normal(size=300)) > 0
    model = LogisticRegression().fit(
        x[["signal"]].assign(noise=0.0), y
    )  # ignores `noise` (coefficient fit on zeros)
    ours = permutation_auc_drop(model, x, y.to_numpy(), n_repeats=30, seed=1)
    theirs = permutation_importance(
        model, x, y, scoring="roc_auc", n_repeats=30, random_state=1
    ).importances_mean
    assert ours[1] == pytest.approx(0.0, abs=1e-12) and ours[0] > 0.3
    assert ours[0] == pytest.approx(theirs[0], abs=0.02)


def test_analysis_never_imports_the_report():
    """Layers point down: the report renders the analysis's tables and verdicts, never the reverse."""
    import ast
    from pathlib import Path

    import mudiff.analysis

    for path in Path(mudiff.analysis.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [f"{node.module}.{a.name}" for a in node.names]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not any(n == "mudiff.report" or n.startswith("mudiff.report.") for n in names), path.name
