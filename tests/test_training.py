"""Per-sample quantities read off logits (SPEC: p_y, max_p, neg_entropy, correct, loss, phi)."""

from __future__ import annotations

import math

import pytest
import torch

from mudiff.training import per_sample


def _naive(z: list[float], y: int) -> dict:
    e = [math.exp(v) for v in z]
    p = [v / sum(e) for v in e]
    return {
        "p_y": p[y],
        "max_p": max(p),
        "neg_entropy": sum(q * math.log(q) for q in p),
        "loss": -math.log(p[y]),
        "phi": math.log(p[y]) - math.log(1 - p[y]),
        "correct": max(range(len(z)), key=lambda k: z[k]) == y,
    }


@pytest.mark.parametrize("z, y", [([2.0, 1.0, 0.0], 0), ([0.5, -1.0, 3.0], 1), ([0.3, 0.2, 0.1, -0.4], 3)])
def test_per_sample_matches_naive_formulas(z, y):
    out = per_sample(torch.tensor([z]), torch.tensor([y]))
    ref = _naive(z, y)
    for key in ("p_y", "max_p", "neg_entropy", "loss", "phi"):
        assert out[key].item() == pytest.approx(ref[key], rel=1e-5, abs=1e-6), key
    assert bool(out["correct"].item()) is ref["correct"]


def test_per_sample_by_hand_two_classes():
    # logits (0, 0): p = (1/2, 1/2); phi = log(1/2) - log(1/2) = 0; loss = log 2; sum p log p = log(1/2)
    # logits (log 3, 0), y = 0: p = (3/4, 1/4); phi = log(3/4) - log(1/4) = log 3
    out = per_sample(torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]]), torch.tensor([1, 0]))
    torch.testing.assert_close(out["p_y"], torch.tensor([0.5, 0.75]))
    torch.testing.assert_close(out["max_p"], torch.tensor([0.5, 0.75]))
    torch.testing.assert_close(out["phi"], torch.tensor([0.0, math.log(3.0)]))
    torch.testing.assert_close(out["loss"], torch.tensor([math.log(2.0), -math.log(0.75)]))
    torch.testing.assert_close(
        out["neg_entropy"], torch.tensor([math.log(0.5), 0.75 * math.log(0.75) + 0.25 * math.log(0.25)])
    )
    # a tie (0, 0) goes to class 0 under argmax, so y = 1 is not correct
    assert out["correct"].tolist() == [False, True]


def test_phi_finite_for_extreme_logits():
    out = per_sample(torch.tensor([[100.0, 0.0], [100.0, 0.0], [1000.0, 0.0]]), torch.tensor([0, 1, 1]))
    # naive log p_y - log(1 - p_y) is log 1 - log 0 = inf in float32 for the first row
    p_y = torch.tensor([[100.0, 0.0]]).softmax(1)[0, 0]
    assert torch.isinf(p_y.log() - (1 - p_y).log())
    assert torch.isfinite(out["phi"]).all()
    # phi = z_y - logsumexp_{k != y} z_k: 100 - 0; 0 - 100; 0 - 1000
    torch.testing.assert_close(out["phi"], torch.tensor([100.0, -100.0, -1000.0]))
    assert torch.isfinite(out["neg_entropy"]).all() and torch.isfinite(out["loss"]).all()
    torch.testing.assert_close(out["loss"][1:], torch.tensor([100.0, 1000.0]))
    assert out["correct"].tolist() == [True, False, False]
    # three classes: 100 - log(e^0 + e^0)
    three = per_sample(torch.tensor([[100.0, 0.0, 0.0]]), torch.tensor([0]))
    torch.testing.assert_close(three["phi"], torch.tensor([100.0 - math.log(2.0)]))
