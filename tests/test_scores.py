"""Per-sample scores: memorization, training-dynamics proxies, centroid distance, entanglement."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mudiff.forget_sets import entanglement_score
from mudiff.scores import HARDNESS, hardness
from mudiff.scores.centroid_distance import centroid_distance
from mudiff.scores.dynamics import bi_acc, confidence, entropy, forgetting_events, max_conf
from mudiff.scores.memorization import memorization


def test_memorization_hand_computed_bank():
    # K=4 models (rows), N=4 samples (columns).
    mask = np.array(
        [
            [1, 1, 0, 0],
            [1, 1, 1, 0],
            [1, 0, 1, 0],
            [1, 0, 1, 0],
        ],
        dtype=bool,
    )
    correct = np.array(
        [
            [1, 1, 0, 1],
            [0, 1, 1, 0],
            [1, 0, 1, 1],
            [1, 1, 0, 1],
        ],
        dtype=bool,
    )
    mem = memorization(mask, correct)
    # sample 0: in every model -> no "out" models -> NaN
    assert np.isnan(mem[0])
    # sample 1: in k0, k1 (correct 1, 1) -> 1.0; out k2, k3 (correct 0, 1) -> 0.5; mem = 0.5
    assert mem[1] == pytest.approx(0.5)
    # sample 2: in k1, k2, k3 (correct 1, 1, 0) -> 2/3; out k0 (correct 0) -> 0; mem = 2/3
    assert mem[2] == pytest.approx(2 / 3)
    # sample 3: in no model -> NaN
    assert np.isnan(mem[3])


def test_memorization_accepts_int_arrays_and_can_be_negative():
    mask = np.array([[1], [0]])
    correct = np.array([[0], [1]])
    # in: k0 wrong (0); out: k1 right (1) -> 0 - 1 = -1
    assert memorization(mask, correct).tolist() == [-1.0]


# (epochs=4, N=3)
CORRECT = np.array(
    [
        [1, 0, 1],
        [0, 1, 1],
        [1, 1, 1],
        [0, 1, 0],
    ],
    dtype=bool,
)


def test_forgetting_events_counts_only_correct_to_incorrect():
    # sample 0: 1->0, 0->1, 1->0 : 2 forgetting events (0->1 does not count)
    # sample 1: 0->1, 1->1, 1->1 : 0
    # sample 2: 1->1, 1->1, 1->0 : 1
    assert forgetting_events(CORRECT).tolist() == [2.0, 0.0, 1.0]


def test_forgetting_events_always_right_is_zero_never_learned_is_the_epoch_count():
    """Toneva et al.'s code: a sample never classified correctly gets the maximum, the number of epochs."""
    c = np.array([[0, 1], [0, 1], [0, 1]])
    assert forgetting_events(c).tolist() == [3.0, 0.0]


def test_forgetting_events_never_learned_ranks_as_hardest():
    # 5 epochs: learned-and-forgotten twice (the most a learned sample can reach is 5 // 2 = 2), never learned, once
    c = np.array([[1, 0, 1], [0, 0, 1], [1, 0, 1], [0, 0, 1], [1, 0, 0]], dtype=bool)
    out = forgetting_events(c)
    assert out.tolist() == [2.0, 5.0, 1.0]
    assert np.argmax(hardness("forgetting_events", out)) == 1


def test_bi_acc_is_mean_correctness_over_epochs():
    # column sums 2, 3, 3 over 4 epochs
    assert bi_acc(CORRECT).tolist() == [0.5, 0.75, 0.75]


def test_confidence_and_max_conf_are_epoch_means():
    p_y = np.array([[0.2, 0.9], [0.4, 0.7], [0.9, 0.8]])
    max_p = np.array([[0.5, 0.9], [0.6, 0.7], [0.9, 0.8]])
    # (0.2+0.4+0.9)/3 = 0.5; (0.9+0.7+0.8)/3 = 0.8
    np.testing.assert_allclose(confidence(p_y), [0.5, 0.8])
    # (0.5+0.6+0.9)/3 = 2/3; 0.8
    np.testing.assert_allclose(max_conf(max_p), [2 / 3, 0.8])


def test_entropy_is_mean_negative_entropy():
    # epoch 0: uniform over 2 classes: sum p log p = log(1/2); epoch 1: one-hot: 0
    ne = np.array([[math.log(0.5)], [0.0]])
    # mean = log(0.5) / 2 = -0.34657...
    np.testing.assert_allclose(entropy(ne), [math.log(0.5) / 2])
    assert entropy(ne)[0] < 0  # negative entropy: a higher value means more confident


def test_hardness_directions():
    assert HARDNESS["memorization"] == 1 and HARDNESS["confidence"] == -1
    np.testing.assert_array_equal(hardness("confidence", np.array([0.1, 0.9])), [-0.1, -0.9])
    with pytest.raises(ValueError, match="unknown score 'nope'"):
        hardness("nope", np.array([1.0]))


def test_centroid_distance_by_hand():
    z = np.array([[0, 0], [2, 0], [1, 3]])
    # centroid (1, 1): distances sqrt(1+1), sqrt(1+1), sqrt(0+4)
    np.testing.assert_allclose(centroid_distance(z), [math.sqrt(2), math.sqrt(2), 2.0])


def test_entanglement_score_by_hand():
    z = np.array([[0.0, 0.0], [2.0, 0.0], [1.0, 4.0], [1.0, 6.0]])
    forget = np.array([False, False, True, True])
    # mu_R = (1, 0), mean_R ||z - mu_R||^2 = (1 + 1)/2 = 1
    # mu_F = (1, 5), mean_F ||z - mu_F||^2 = (1 + 1)/2 = 1
    # mu = (1, 2.5); between = ((2.5^2) + (2.5^2)) / 2 = 6.25
    # ES = (1 + 1) / 6.25 = 0.32
    assert entanglement_score(z, forget) == pytest.approx(0.32)


def test_entanglement_score_grows_as_sets_move_together():
    z = np.array([[0.0, 0.0], [2.0, 0.0], [1.0, 1.0], [1.0, 3.0]])
    forget = np.array([False, False, True, True])
    # mu_R = (1,0), within_R = 1; mu_F = (1,2), within_F = 1; mu = (1,1); between = (1+1)/2 = 1
    assert entanglement_score(z, forget) == pytest.approx(2.0)


def test_entanglement_score_refuses_empty_sets():
    z = np.zeros((3, 2))
    with pytest.raises(ValueError, match="non-empty forget set"):
        entanglement_score(z, np.zeros(3, dtype=bool))
    with pytest.raises(ValueError, match="non-empty retain set"):
        entanglement_score(z, np.ones(3, dtype=bool))
