"""Forget-set construction: sizes, random sets, direction-aware levels, id validation, names."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mudiff import forget_sets as fs
from mudiff.forget_sets import ForgetSetError
from mudiff.scores import HARDNESS

# id -> memorization. Sorted ascending (rank: id):
# 0:15(0.00) 1:11(0.05) 2:21(0.10) 3:17(0.20) 4:13(0.30) 5:19(0.45)
# 6:10(0.50) 7:18(0.60) 8:14(0.70) 9:20(0.80) 10:12(0.90) 11:16(1.00)
MEM = {
    10: 0.50,
    11: 0.05,
    12: 0.90,
    13: 0.30,
    14: 0.70,
    15: 0.00,
    16: 1.00,
    17: 0.20,
    18: 0.60,
    19: 0.45,
    20: 0.80,
    21: 0.10,
}
# id -> confidence (high confidence = easy). Sorted ascending (rank: id):
# 0:13(0.05) 1:20(0.10) 2:10(0.15) 3:16(0.30) 4:11(0.35) 5:18(0.40)
# 6:21(0.50) 7:14(0.55) 8:12(0.60) 9:19(0.75) 10:17(0.85) 11:15(0.95)
CONF = {
    10: 0.15,
    11: 0.35,
    12: 0.60,
    13: 0.05,
    14: 0.55,
    15: 0.95,
    16: 0.30,
    17: 0.85,
    18: 0.40,
    19: 0.75,
    20: 0.10,
    21: 0.50,
}


@pytest.fixture
def scores() -> pd.DataFrame:
    ids = [14, 20, 11, 17, 10, 21, 13, 16, 19, 12, 18, 15]  # rows deliberately not in id order
    return pd.DataFrame(
        {
            "id": np.array(ids, dtype=np.int64),
            "label": np.array([i % 3 for i in ids], dtype=np.int64),
            "memorization": [MEM[i] for i in ids],
            "confidence": [CONF[i] for i in ids],
        }
    )


# ----------------------------------------------------------------------------- resolve_size


def test_resolve_size_fraction_and_count():
    assert fs.resolve_size(0.03, 1437) == 43  # round(43.11)
    assert fs.resolve_size(0.25, 12) == 3
    assert fs.resolve_size(3000, 60000) == 3000
    assert fs.resolve_size(1, 10) == 1  # 1 is a count, not "all of train"
    assert fs.resolve_size(10, 10) == 10


def test_resolve_size_refuses_empty():
    with pytest.raises(ForgetSetError, match=r"0\.0001 gives an empty forget set on 100"):
        fs.resolve_size(0.0001, 100)  # round(0.01) = 0


def test_resolve_size_refuses_too_large():
    with pytest.raises(ForgetSetError, match="200 asks for 200 samples but the train set has 100"):
        fs.resolve_size(200, 100)


# ----------------------------------------------------------------------------- random


def test_random_set_size_membership_determinism():
    table = pd.DataFrame({"id": np.arange(1000, 1100), "label": 0, "memorization": 0.0})
    ids, manifest = fs.build("random", table, 0.1, seed=3)
    assert len(ids) == 10 and len(np.unique(ids)) == 10
    assert ids.dtype == np.int64
    assert set(ids) <= set(range(1000, 1100))
    assert np.all(np.diff(ids) > 0)  # sorted
    again, _ = fs.build("random", table, 0.1, seed=3)
    np.testing.assert_array_equal(ids, again)
    other, _ = fs.build("random", table, 0.1, seed=4)
    assert set(other) != set(ids)
    assert manifest == {
        "name": "random",
        "rule": "random",
        "score": None,
        "level": None,
        "size": 10,
        "seed": 3,
        "mid_rule": None,
        "ordered_by": None,
        "size_rule": "forget_sets.size = 0.1",
    }


# ----------------------------------------------------------------------------- levels


def test_memorization_levels_by_hand(scores):
    low, _ = fs.build("memorization_low", scores, 3)
    mid, _ = fs.build("memorization_mid", scores, 0.25)  # 0.25 * 12 = 3
    high, man = fs.build("memorization_high", scores, 3)
    assert low.tolist() == [11, 15, 21]  # ranks 0-2: the least memorized (easy)
    assert mid.tolist() == [10, 18, 19]  # start = 12//2 - 3//2 = 5: ranks 5, 6, 7
    assert high.tolist() == [12, 16, 20]  # ranks 9-11: the most memorized (hard)
    assert man == {
        "name": "memorization_high",
        "rule": "level",
        "score": "memorization",
        "level": "high",
        "size": 3,
        "seed": 0,
        "ties": "seeded random order",
        "mid_rule": None,
        "ordered_by": None,
        "size_rule": "forget_sets.size = 3",
        "score_range": [0.8, 1.0],
        "tie_block": None,
        "mid_cut": None,
        "same_population_as": [],
    }


def test_confidence_high_is_least_confident(scores):
    # confidence has direction -1: hardest = smallest confidence = ids 13 (0.05), 20 (0.10), 10 (0.15)
    high, _ = fs.build("confidence_high", scores, 3)
    low, _ = fs.build("confidence_low", scores, 3)
    assert high.tolist() == [10, 13, 20]
    assert low.tolist() == [15, 17, 19]  # 0.95, 0.85, 0.75


def test_mix_takes_a_third_from_each_bin(scores):
    ids, manifest = fs.build("memorization_mix", scores, 6)
    # thirds 2, 2, 2: low ranks 0-1 {15, 11}; mid start 6 - 1 = 5: ranks 5-6 {19, 10}; high ranks 10-11 {12, 16}
    assert ids.tolist() == [10, 11, 12, 15, 16, 19]
    assert manifest["mid_rule"] == "quantile"


def test_mix_of_size_not_divisible_by_three(scores):
    ids, _ = fs.build("memorization_mix", scores, 4)
    # thirds 1, 1, 2: low {15}; mid start 6 - 0 = 6: {10}; high ranks 10-11 {12, 16}
    assert ids.tolist() == [10, 12, 15, 16]


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_low_mid_high_disjoint_when_they_fit(scores, n):
    sets = [set(fs.build(f"memorization_{lvl}", scores, n)[0]) for lvl in ("low", "mid", "high")]
    assert all(len(s) == n for s in sets)
    assert not (sets[0] & sets[1]) and not (sets[1] & sets[2]) and not (sets[0] & sets[2])


@pytest.mark.parametrize("score", sorted(HARDNESS))
def test_high_is_hardest_for_every_score(score):
    rng = np.random.default_rng(7)
    values = rng.permutation(np.linspace(-1.0, 2.0, 30))
    table = pd.DataFrame({"id": np.arange(100, 130), "label": 0, score: values})
    direction = HARDNESS[score]
    high, _ = fs.build(f"{score}_high", table, 5)
    low, _ = fs.build(f"{score}_low", table, 5)
    value_of = dict(zip(table["id"], values))
    hard_high = [direction * value_of[i] for i in high]
    hard_rest = [direction * value_of[i] for i in table["id"] if i not in set(high)]
    assert min(hard_high) > max(hard_rest)
    hard_low = [direction * value_of[i] for i in low]
    hard_not_low = [direction * value_of[i] for i in table["id"] if i not in set(low)]
    assert max(hard_low) < min(hard_not_low)


def test_mid_rule_rum_takes_closest_to_half():
    values = [0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.45, 0.52, 0.9, 0.95, 0.97, 0.99]
    table = pd.DataFrame({"id": np.arange(12), "label": 0, "memorization": values})
    # quantile: start = 6 - 1 = 5 -> ranks 5, 6 -> ids 5 (0.05), 6 (0.45)
    assert fs.build("memorization_mid", table, 2)[0].tolist() == [5, 6]
    # rum: |v - 0.5| smallest: id 7 (0.02), id 6 (0.05)
    ids, manifest = fs.build("memorization_mid", table, 2, mid_rule="rum")
    assert ids.tolist() == [6, 7]
    assert manifest["mid_rule"] == "rum"


def test_ties_broken_by_id_without_a_seed():
    table = pd.DataFrame({"id": [5, 3, 9, 1], "label": 0, "memorization": [0.2, 0.2, 0.2, 0.2]})
    ranked = fs.rank_by_hardness(table, "memorization")
    assert ranked["id"].tolist() == [1, 3, 5, 9]


def test_ties_broken_in_a_seeded_random_order_not_by_id():
    table = pd.DataFrame(
        {"id": np.arange(200), "label": 0, "memorization": np.r_[np.zeros(190), np.linspace(0.5, 1, 10)]}
    )
    low = [fs.build("memorization_low", table, 20, seed=s)[0] for s in (0, 0, 1)]
    np.testing.assert_array_equal(low[0], low[1])  # the same seed, the same set
    assert not np.array_equal(low[0], low[2])  # another seed, another draw from the tie
    assert low[0].max() > 40  # not simply the lowest ids
    # the order of a tie does not depend on the order of the table's rows
    shuffled = table.sample(frac=1, random_state=3)
    np.testing.assert_array_equal(fs.build("memorization_low", shuffled, 20, seed=0)[0], low[0])
    # ties never blur the levels: high is still the ten samples above the tie, and more of the tie
    assert set(range(190, 200)) <= set(fs.build("memorization_high", table, 15, seed=0)[0])


def _tied_table(n_zero: int, values: np.ndarray) -> pd.DataFrame:
    """n_zero samples tied at memorization 0, then `values`; rows shuffled."""
    mem = np.r_[np.zeros(n_zero), values]
    order = np.random.default_rng(2).permutation(len(mem))
    return pd.DataFrame({"id": order, "label": 0, "memorization": mem[order]})


def test_mid_is_cut_above_a_tie_block_that_holds_low():
    # 180 of 200 tied at 0 (90%), then 0.05, 0.10, ..., 1.00; N = 5
    table = _tied_table(180, np.round(np.arange(1, 21) * 0.05, 2))
    value_of = dict(zip(table["id"], table["memorization"]))
    (low, man_low), (mid, man_mid), (high, man_high) = (
        fs.build(f"memorization_{lvl}", table, 5, seed=3) for lvl in ("low", "mid", "high")
    )
    assert all(value_of[i] == 0 for i in low)
    # the untied remainder is ranks 180..194 (15 samples); its 5 around the median: ranks 180 + 7 - 2 = 185..189
    assert sorted(value_of[i] for i in mid) == [0.30, 0.35, 0.40, 0.45, 0.50]
    assert sorted(value_of[i] for i in high) == [0.80, 0.85, 0.90, 0.95, 1.00]
    assert not (set(mid) & set(low)) and not (set(mid) & set(high))
    assert man_mid["mid_cut"] == "above the tie block at 0" and man_mid["score_range"] == [0.30, 0.50]
    assert man_mid["tie_block"] is None and man_mid["same_population_as"] == []
    assert man_low["tie_block"] == {"value": 0.0, "size": 180} and man_low["score_range"] == [0.0, 0.0]
    assert man_low["same_population_as"] == [] and man_low["mid_cut"] is None
    assert man_high["tie_block"] is None and man_high["same_population_as"] == []
    # without the cut, mid would be ranks 98..102, all zeros: the same population as low
    ranked = fs.rank_by_hardness(table, "memorization", tie_seed=3)
    assert set(ranked["memorization"].iloc[98:103]) == {0.0}


def test_mid_is_cut_below_a_tie_block_that_holds_high():
    # confidence has direction -1: 180 samples tied at confidence 0.25 are the hardest
    conf = np.r_[np.full(180, 0.25), np.round(1 - np.arange(1, 21) * 0.02, 2)]
    table = pd.DataFrame({"id": np.arange(200), "label": 0, "confidence": conf})
    mid, man = fs.build("confidence_mid", table, 5)
    high, man_high = fs.build("confidence_high", table, 5)
    assert set(high) <= set(range(180)) and man_high["tie_block"] == {"value": 0.25, "size": 180}
    # between low (ranks 0..4: confidence 0.98..0.90) and the block (ranks 20..199): ranks 5..19, middle five 10..14
    assert sorted(conf[mid].tolist()) == [0.70, 0.72, 0.74, 0.76, 0.78]
    assert man["mid_cut"] == "below the tie block at 0.25" and man["same_population_as"] == []


def test_levels_without_ties_keep_the_quantile_windows(scores):
    windows, cut = fs.level_windows(fs.rank_by_hardness(scores, "memorization", tie_seed=0), (3, 3, 3))
    assert cut == "quantile"
    assert [w.tolist() for w in windows.values()] == [[0, 1, 2], [5, 6, 7], [9, 10, 11]]
    for level, ids in (("low", [11, 15, 21]), ("mid", [10, 18, 19]), ("high", [12, 16, 20])):
        got, man = fs.build(f"memorization_{level}", scores, 3)
        assert got.tolist() == ids
        assert man["tie_block"] is None and man["same_population_as"] == []
        assert man["mid_cut"] == ("quantile" if level == "mid" else None)
    mix, man = fs.build("memorization_mix", scores, 6)
    assert mix.tolist() == [10, 11, 12, 15, 16, 19]
    assert (
        man["mid_cut"] == "quantile" and man["same_population_as"] == [] and man["score_range"] == [0.0, 1.0]
    )
    assert fs.build("memorization_mid", scores, 3, mid_rule="rum")[1]["mid_cut"] == "rum"


def test_mid_keeps_the_quantile_window_and_says_so_when_the_remainder_is_too_small():
    # 190 tied at 0, 10 above; N = 8: between the block (ranks 0..189) and high (192..199) lie only ranks 190, 191
    table = _tied_table(190, np.linspace(0.5, 1.0, 10))
    (low, man_low), (mid, man_mid), (high, man_high) = (
        fs.build(f"memorization_{lvl}", table, 8, seed=1) for lvl in ("low", "mid", "high")
    )
    ranked = fs.rank_by_hardness(table, "memorization", tie_seed=1)
    np.testing.assert_array_equal(
        mid, np.sort(ranked["id"].to_numpy()[96:104])
    )  # 100 - 4: the quantile window
    assert man_mid["mid_cut"] == "quantile" and man_mid["tie_block"] == {"value": 0.0, "size": 190}
    assert man_mid["same_population_as"] == ["memorization_low"]
    assert man_low["same_population_as"] == ["memorization_mid"]
    assert man_high["same_population_as"] == [] and man_high["tie_block"] is None
    assert not (set(mid) & set(low))


def test_mix_cuts_its_mid_third_and_reports_thirds_of_one_population():
    table = _tied_table(180, np.round(np.arange(1, 21) * 0.05, 2))
    value_of = dict(zip(table["id"], table["memorization"]))
    ids, man = fs.build("memorization_mix", table, 6, seed=0)
    # thirds 2, 2, 2: low two zeros; mid around the median of ranks 180..197 (18): 180 + 9 - 1 = 188, 189; high the top two
    assert sorted(value_of[i] for i in ids) == [0.0, 0.0, 0.45, 0.50, 0.95, 1.00]
    assert man["mid_cut"] == "above the tie block at 0" and man["same_population_as"] == []
    everything_tied = pd.DataFrame({"id": np.arange(30), "label": 0, "memorization": 0.0})
    _, man = fs.build("memorization_mix", everything_tied, 6)
    assert man["mid_cut"] == "quantile" and man["tie_block"] == {"value": 0.0, "size": 30}
    assert man["same_population_as"] == ["memorization_mix (low and mid and high thirds share one tie block)"]
    _, man = fs.build("memorization_low", everything_tied, 6)
    assert man["same_population_as"] == ["memorization_mid", "memorization_high"]


def test_report_forget_set_table_shows_same_population_and_mid_cut(tmp_path):
    from mudiff.io import write_json, write_table
    from mudiff.stages.report import forget_set_table

    table = _tied_table(190, np.linspace(0.5, 1.0, 10))
    manifests, id_tables = [], []
    for seed in (0, 1):
        for name in ("memorization_low", "memorization_mid", "random"):
            ids, manifest = fs.build(name, table, 8, seed=seed)
            folder = tmp_path / f"seed_{seed}"
            write_json(manifest, folder / f"{name}.json")
            write_table(pd.DataFrame({"id": ids}), folder / f"{name}.parquet")
            manifests.append(str(folder / f"{name}.json"))
            id_tables.append(str(folder / f"{name}.parquet"))
    shown = forget_set_table(manifests, id_tables, {0: table, 1: table}).set_index("name")
    assert shown.loc["memorization_mid", "same_population_as"] == "memorization_low"
    assert shown.loc["memorization_low", "same_population_as"] == "memorization_mid"
    assert (
        shown.loc["memorization_mid", "mid_cut"] == "quantile"
        and shown.loc["memorization_low", "mid_cut"] == ""
    )
    assert shown.loc["random", "same_population_as"] == "" and shown.loc["random", "seeds"] == 2


def test_nan_scores_are_skipped_and_can_make_a_level_too_large():
    table = pd.DataFrame({"id": [0, 1, 2, 3], "label": 0, "memorization": [np.nan, 0.9, 0.1, np.nan]})
    assert fs.build("memorization_high", table, 1)[0].tolist() == [1]
    assert fs.build("memorization_low", table, 1)[0].tolist() == [2]
    with pytest.raises(ForgetSetError, match="asks for 3 samples but only 2 have a finite score"):
        fs.build("memorization_high", table, 3)


def test_unknown_score_column_is_refused(scores):
    with pytest.raises(
        ForgetSetError,
        match=r"score 'entropy' is not in the scores table; it has \['confidence', 'memorization'\]",
    ):
        fs.build("entropy_high", scores, 3)


# ----------------------------------------------------------------------------- names


def test_parse_name():
    assert fs.parse_name("random") == ("random", None)
    assert fs.parse_name("memorization_high") == ("memorization", "high")
    assert fs.parse_name("forgetting_events_mix") == ("forgetting_events", "mix")


@pytest.mark.parametrize("bad", ["memorization_top", "_low", "memorization", "randomly"])
def test_parse_name_refuses_bad_names(bad):
    with pytest.raises(ForgetSetError, match=f"forget set '{bad}' is neither 'random'"):
        fs.parse_name(bad)


CFG = {
    "size": 0.03,
    "seed": 5,
    "random": True,
    "mid_rule": "quantile",
    "by_score": {"memorization": ["low", "high"], "confidence": ["mid", "mix"]},
}


def test_names_of_a_config():
    assert fs.names(CFG) == [
        "random",
        "memorization_low",
        "memorization_high",
        "confidence_mid",
        "confidence_mix",
    ]
    assert fs.names({**CFG, "random": False, "by_score": {"bi_acc": ["low"]}}) == ["bi_acc_low"]


def test_params_of():
    assert fs.params_of("random", CFG) == {"size": 0.03, "seed": 5}
    assert fs.params_of("memorization_high", CFG) == {"size": 0.03, "seed": 5}  # the seed breaks ties
    assert fs.params_of("memorization_low", CFG) == {"size": 0.03, "seed": 5}
    assert fs.params_of("confidence_mid", CFG) == {"size": 0.03, "seed": 5, "mid_rule": "quantile"}
    assert fs.params_of("confidence_mix", CFG) == {"size": 0.03, "seed": 5, "mid_rule": "quantile"}


# ----------------------------------------------------------------------------- validate_ids


def test_validate_ids_accepts_a_good_set():
    out = fs.validate_ids(np.array([3, 1]), np.arange(5))
    assert out.tolist() == [3, 1]


def test_validate_ids_refuses_empty():
    with pytest.raises(ForgetSetError, match="my set: no samples"):
        fs.validate_ids(np.array([], dtype=np.int64), np.arange(5), name="my set")


def test_validate_ids_refuses_duplicates():
    with pytest.raises(ForgetSetError, match=r"forget set: duplicate ids, e\.g\. \[2\]"):
        fs.validate_ids(np.array([1, 2, 2, 4]), np.arange(5))


def test_validate_ids_refuses_ids_outside_train():
    with pytest.raises(ForgetSetError, match=r"2 ids are not in the train set, e\.g\. \[7, 99\]"):
        fs.validate_ids(np.array([1, 99, 7]), np.arange(5))


# ----------------------------------------------------------------------------- entanglement, risk_ranked, class


def _distance_table(n: int = 30) -> pd.DataFrame:
    # centroid_distance rank r belongs to id 100 + r; rows shuffled
    rng = np.random.default_rng(1)
    order = rng.permutation(n)
    return pd.DataFrame(
        {
            "id": 100 + order,
            "label": order % 3,
            "centroid_distance": order * 0.5,
            "privacy_risk": rng.permutation(n).astype(float),
        }
    )


def test_es_sets_are_rum_slices_at_0_based_indices_3_12_14():
    table = _distance_table(30)  # 15 slices of 2 ranks: slice i (0-based) holds ranks 2i, 2i+1
    assert fs.build("es_low", table, 2)[0].tolist() == [106, 107]
    assert fs.build("es_mid", table, 2)[0].tolist() == [124, 125]
    ids, manifest = fs.build("es_high", table, 2)
    assert ids.tolist() == [128, 129]
    assert manifest["rule"] == "entanglement" and manifest["score"] == "centroid_distance"
    assert (
        manifest["slice_index"] == 14 and manifest["slice_indexing"] == "0-based" and manifest["slices"] == 15
    )
    # fewer than a slice: the middle of it (slice 3 of 60 ranks = ranks 12..15, middle two = 13, 14)
    assert fs.build("es_low", _distance_table(60), 2)[0].tolist() == [113, 114]


def test_es_high_holds_only_the_farthest_slice():
    """RUM's group_index 14 of 15 is the last slice: the samples farthest from the centroid."""
    n = 150  # 15 slices of 10 ranks; the last holds ranks 140..149
    table = _distance_table(n)
    ids = fs.build("es_high", table, 4)[0]
    farthest = set(table.nlargest(10, "centroid_distance")["id"])
    assert set(ids.tolist()) <= farthest
    assert ids.tolist() == [243, 244, 245, 246]  # the middle four of the slice (id = 100 + rank)


def test_es_set_larger_than_its_slice_is_refused():
    with pytest.raises(
        ForgetSetError,
        match=r"forget_sets.size: es_mid asks for 3 samples but slice 12 \(0-based\) of 15 holds only 2",
    ):
        fs.build("es_mid", _distance_table(30), 3)


def test_risk_ranked_takes_the_most_exposed_in_rank_order():
    table = _distance_table(30)
    risk = dict(zip(table["id"], table["privacy_risk"]))
    ids, manifest = fs.build("risk_ranked", table, 5)
    assert [risk[i] for i in ids] == [29.0, 28.0, 27.0, 26.0, 25.0]
    assert manifest["ordered_by"] == "privacy_risk descending" and manifest["size"] == 5
    tied = pd.DataFrame({"id": [7, 3, 5, 1], "label": 0, "privacy_risk": [2.0, 2.0, 9.0, 1.0]})
    assert fs.build("risk_ranked", tied, 3)[0].tolist() == [5, 3, 7]  # ties by id


def test_class_set_is_exactly_one_class():
    table = _distance_table(30)
    ids, manifest = fs.build("class", table, 0.03, class_id=2)
    assert ids.tolist() == sorted(table.loc[table["label"] == 2, "id"])
    assert manifest["size"] == 10 and manifest["class_id"] == 2 and manifest["size_rule"] == "class size"


@pytest.mark.parametrize(
    "class_id, text", [(7, "class 7 has no training samples"), (None, "class_id is null")]
)
def test_class_set_refuses_empty_or_missing_class(class_id, text):
    with pytest.raises(ForgetSetError, match=f"forget_sets.class_id.*{text}|{text}"):
        fs.build("class", _distance_table(30), 0.03, class_id=class_id)


def test_class_set_refuses_the_whole_train_set():
    table = _distance_table(30).assign(label=0)
    with pytest.raises(ForgetSetError, match="forget_sets.class_id: class 0 is the whole train set"):
        fs.build("class", table, 0.03, class_id=0)


@pytest.mark.parametrize("name", ["random", "memorization_high", "es_low", "risk_ranked"])
def test_every_sized_family_refuses_empty_and_oversized(name, scores):
    table = scores.assign(centroid_distance=scores["memorization"], privacy_risk=scores["confidence"])
    with pytest.raises(
        ForgetSetError, match="forget_sets.size 0.01 gives an empty forget set on 12 training samples"
    ):
        fs.build(name, table, 0.01)
    with pytest.raises(
        ForgetSetError, match="forget_sets.size 13 asks for 13 samples but the train set has 12"
    ):
        fs.build(name, table, 13)


def test_new_names_and_params():
    cfg = {**CFG, "entanglement": True, "risk_ranked": True, "class_id": 4}
    assert fs.names(cfg)[-5:] == ["es_low", "es_mid", "es_high", "risk_ranked", "class"]
    assert fs.names({**cfg, "class_id": None, "entanglement": False})[-1] == "risk_ranked"
    assert fs.parse_name("es_mid") == ("entanglement", "mid")
    assert fs.parse_name("risk_ranked") == ("risk_ranked", None) and fs.parse_name("class") == ("class", None)
    assert fs.params_of("es_mid", cfg) == {"size": 0.03}
    assert fs.params_of("risk_ranked", cfg) == {"size": 0.03}
    assert fs.params_of("class", cfg) == {"class_id": 4}
