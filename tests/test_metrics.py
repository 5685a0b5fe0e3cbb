"""ToW and the population membership-inference attack."""

from __future__ import annotations

import numpy as np
import pytest

from mudiff.metrics.mia import population_mia
from mudiff.metrics.tow import tow, tow_mia


def test_tow_perfect_match_is_one():
    assert tow(12.5, 97.0, 88.0, 12.5, 97.0, 88.0) == 1.0
    assert tow_mia(0.4, 97.0, 88.0, 0.4, 97.0, 88.0) == 1.0


def test_tow_by_hand():
    # (1 - 10/100)(1 - 5/100)(1 - 5/100) = 0.9 * 0.95 * 0.95 = 0.81225
    assert tow(50, 90, 80, 40, 95, 85) == pytest.approx(0.81225)
    # symmetric in unlearned vs retrain
    assert tow(40, 95, 85, 50, 90, 80) == pytest.approx(0.81225)
    # all three off by 100 points -> 0
    assert tow(100, 0, 100, 0, 100, 0) == 0.0


def test_tow_mia_by_hand():
    # (1 - |0.3 - 0.5|)(1 - 0)(1 - 10/100) = 0.8 * 1 * 0.9 = 0.72
    assert tow_mia(0.3, 90, 80, 0.5, 90, 70) == pytest.approx(0.72)
    # the MIA term is a share, not a percentage: a gap of 0.5 halves the score
    assert tow_mia(1.0, 90, 80, 0.5, 90, 80) == pytest.approx(0.5)


@pytest.fixture
def separable():
    rng = np.random.default_rng(0)
    retain = rng.uniform(0.95, 0.999, 200)  # members: confident
    test = rng.uniform(0.4, 0.6, 200)  # non-members: unsure
    return rng, retain, test


def test_mia_forget_like_test_is_near_one(separable):
    rng, retain, test = separable
    assert population_mia(retain, test, rng.uniform(0.4, 0.6, 50)) >= 0.95


def test_mia_forget_like_retain_is_near_zero(separable):
    rng, retain, test = separable
    assert population_mia(retain, test, rng.uniform(0.95, 0.999, 50)) <= 0.05


def test_mia_inseparable_is_middling():
    rng = np.random.default_rng(1)
    a = rng.uniform(0.2, 0.95, (3, 2000))
    assert 0.2 <= population_mia(a[0], a[1], a[2]) <= 0.8


def test_mia_balances_unequal_class_sizes(separable):
    # 20 retain vs 200 test: the attack is fit on 20 + 20, and still separates
    rng, retain, test = separable
    assert population_mia(retain[:20], test, rng.uniform(0.4, 0.6, 30)) >= 0.95


def test_mia_empty_forget_raises(separable):
    _, retain, test = separable
    with pytest.raises(ValueError, match="non-empty forget set"):
        population_mia(retain, test, np.array([]))


def test_model_metrics_from_a_prediction_table_by_hand():
    import pandas as pd

    from mudiff.metrics.evaluation import compare, model_metrics

    # train ids 0..9, forget = {0, 1}: F all wrong, R 7 of 8 right; test 3 of 4 right
    train = pd.DataFrame(
        {
            "split": "train",
            "id": range(10),
            "label": 0,
            "p_y": [0.2, 0.3] + [0.9] * 8,
            "phi": 0.0,
            "correct": [False, False] + [True] * 7 + [False],
        }
    )
    test = pd.DataFrame(
        {
            "split": "test",
            "id": range(4),
            "label": 0,
            "p_y": [0.6, 0.7, 0.8, 0.1],
            "phi": 0.0,
            "correct": [True, True, True, False],
        }
    )
    m = model_metrics(pd.concat([train, test]), np.array([0, 1]))
    assert m["FA"] == 0.0 and m["RA"] == pytest.approx(87.5) and m["TA"] == 75.0
    assert 0.0 <= m["MIA"] <= 1.0
    same = compare(m, m)
    assert same["ToW"] == 1.0 and same["ToW_MIA"] == 1.0
    with pytest.raises(ValueError, match="1 forget ids have no prediction"):
        model_metrics(pd.concat([train, test]), np.array([0, 99]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_logistic_1d_matches_scikit_learn(seed):
    from sklearn.linear_model import LogisticRegression

    from mudiff.metrics.mia import fit_logistic_1d

    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(1.0, 1.0, 300), rng.normal(-0.5, 1.5, 300)])
    y = np.concatenate([np.ones(300), np.zeros(300)])
    slope, intercept = fit_logistic_1d(x, y)
    ref = LogisticRegression(C=1.0, tol=1e-10, max_iter=1000).fit(x[:, None], y)
    assert slope == pytest.approx(ref.coef_[0, 0], rel=1e-5) and intercept == pytest.approx(
        ref.intercept_[0], rel=1e-5, abs=1e-7
    )
    grid = np.linspace(-4, 4, 401)
    np.testing.assert_array_equal(slope * grid + intercept > 0, ref.predict(grid[:, None]) == 1)


def _trace(correct_by_epoch, phi_by_epoch=None):
    import pandas as pd

    rows = []
    for epoch, correct in enumerate(correct_by_epoch):
        phis = phi_by_epoch[epoch] if phi_by_epoch else [0.0] * len(correct)
        rows += [
            {"epoch": epoch, "id": i, "correct": c, "phi": p} for i, (c, p) in enumerate(zip(correct, phis))
        ]
    return pd.DataFrame(rows)


def test_forget_movement_inert_rule_known_answers():
    from mudiff.metrics.movement import forget_movement

    # 50 samples; nothing flips, phi moves by 0.5 on average: inert (the rule is on flips)
    still = _trace([[True] * 50, [True] * 50], [[1.0] * 50, [1.5] * 50])
    m = forget_movement(still)
    assert m == {"forget_flip_share": 0.0, "forget_phi_shift": 0.5, "inert": True}
    # one of 50 flips at epoch 1 and flips back at epoch 2: 2% reached once, so not inert
    once = _trace([[True] * 50, [False] + [True] * 49, [True] * 50])
    assert forget_movement(once)["forget_flip_share"] == 0.02 and forget_movement(once)["inert"] is False
    assert forget_movement(once, flip_share=0.05)["inert"] is True
    # flips in both directions count (|change|), FA alone would not see them
    swap = _trace([[True, False] * 25, [False, True] * 25])
    assert forget_movement(swap)["forget_flip_share"] == 1.0
    # a run with no epoch after 0 moved nothing
    assert forget_movement(_trace([[True] * 3]))["inert"] is True
