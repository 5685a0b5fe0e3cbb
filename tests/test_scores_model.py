"""Known answers for the scores that need models or the bank: privacy_risk (LiRA), margin,
grad_norm, curvature, holdout_kl, knn_disagreement; and the scores join and proxies table."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from tinydata import cpu
from torch import nn

from mudiff.analysis.proxies import proxy_table
from mudiff.scores.curvature import curvature
from mudiff.scores.grad_norm import cross_entropy_loss, grad_norm, input_gradients
from mudiff.scores.holdout_kl import finetune_on_holdout, symmetric_kl
from mudiff.scores.knn_disagreement import knn_disagreement
from mudiff.scores.margin import margin
from mudiff.scores.privacy_risk import lira_log_ratio, privacy_risk
from mudiff.stages.scores import join_scores

# ----------------------------------------------------------------------------- LiRA


def test_lira_two_gaussians_closed_form():
    # Sample 0: IN phi = {1, 3} (mean 2, std 1), OUT phi = {-2, 0, -1, -1}... use two values per side:
    # IN {1, 3}: mu 2, sd 1; OUT {-3, 1}: mu -1, sd 2. Models 0,1 IN, models 2,3 OUT.
    phi_bank = np.array([[1.0], [3.0], [-3.0], [1.0]])
    mask = np.array([[True], [True], [False], [False]])
    for q in (-1.0, 0.5, 2.0, 5.0):
        # log N(q; 2, 1) - log N(q; -1, 2) = log(2/1) - (q-2)^2/2 + (q+1)^2/8
        expected = math.log(2.0) - (q - 2) ** 2 / 2 + (q + 1) ** 2 / 8
        assert lira_log_ratio(np.array([q]), phi_bank, mask)[0] == pytest.approx(expected)
    assert privacy_risk(np.array([2.0]), phi_bank, mask)[0] == pytest.approx(math.log(2.0) + 9 / 8)


def test_lira_is_vectorised_over_samples_and_each_sample_uses_its_own_models():
    rng = np.random.default_rng(0)
    mask = rng.random((50, 3)) < 0.5
    phi_bank = np.where(mask, 4.0, -4.0) + rng.normal(0, 1, (50, 3))
    q = np.array([4.0, -4.0, 0.0])
    out = lira_log_ratio(q, phi_bank, mask)
    for i in range(3):
        alone = lira_log_ratio(q[i : i + 1], phi_bank[:, i : i + 1], mask[:, i : i + 1])[0]
        assert out[i] == pytest.approx(alone)
    assert out[0] > 10 and out[1] < -10 and abs(out[2]) < 5  # IN-like, OUT-like, in between


def test_lira_centres_on_the_median_with_the_std_as_spread():
    """As the LiRA authors' fig_fpr_tpr: mean_in = np.median(dat_in, 1), std_in = np.std(dat_in, 1)."""
    # IN {0, 1, 8}: median 1 (mean 3), std sqrt(38/3); OUT {-4, -1, -1, 2}: median -1 (mean -1), std sqrt(4.5)
    phi_bank = np.array([[0.0], [1.0], [8.0], [-4.0], [-1.0], [-1.0], [2.0]])
    mask = np.array([[True], [True], [True], [False], [False], [False], [False]])
    sd_in, sd_out = math.sqrt(38 / 3), math.sqrt(4.5)
    for q in (1.0, 3.0, -2.0):
        expected = (
            math.log(sd_out / sd_in) - (q - 1.0) ** 2 / (2 * sd_in**2) + (q + 1.0) ** 2 / (2 * sd_out**2)
        )
        assert lira_log_ratio(np.array([q]), phi_bank, mask)[0] == pytest.approx(expected, rel=1e-12)
    # an even count: the median is the mean of the middle two (OUT {-4, -1, 2, 7}: -> 0.5)
    phi_bank2 = np.array([[0.0], [1.0], [8.0], [-4.0], [-1.0], [2.0], [7.0]])
    sd_out2 = float(np.std([-4.0, -1.0, 2.0, 7.0]))
    expected = (
        math.log(sd_out2 / sd_in) - (1.0 - 1.0) ** 2 / (2 * sd_in**2) + (1.0 - 0.5) ** 2 / (2 * sd_out2**2)
    )
    assert lira_log_ratio(np.array([1.0]), phi_bank2, mask)[0] == pytest.approx(expected, rel=1e-12)


def test_lira_floors_the_std_and_needs_two_models_per_side():
    phi_bank = np.array([[1.0, 1.0], [1.0, 1.0], [0.0, 0.0], [0.0, 5.0]])
    mask = np.array([[True, True], [True, True], [False, False], [False, True]])
    out = lira_log_ratio(np.array([1.0, 1.0]), phi_bank, mask, min_std=0.5)
    # sample 0: IN {1, 1} -> sd floored at 0.5; OUT {0, 0} -> sd 0.5: log-ratio = 0 - (-(1)^2 / (2 * 0.25)) = 2
    assert out[0] == pytest.approx(2.0)
    assert np.isnan(out[1])  # only one OUT model


# ----------------------------------------------------------------------------- margin, grad_norm


def test_margin_known_values():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2], [0.5, 0.3, 0.2]]))
    out = margin(logits, torch.tensor([0, 2]))
    torch.testing.assert_close(out, torch.tensor([0.2, -0.3]))


def test_grad_norm_of_a_linear_softmax_model_is_known():
    cpu()
    lin = nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0.0, 2.0], [0.0, -1.0, 1.0]]))
    model = nn.Sequential(nn.Flatten(), lin)
    x = torch.tensor([[0.5, -1.0, 0.3], [2.0, 0.0, -1.0]])
    y = torch.tensor([0, 1])
    out = grad_norm(cross_entropy_loss(model), x, y)
    # grad_x log p_y = W_y - sum_k p_k W_k
    w = lin.weight.detach()
    p = (x @ w.T).softmax(1)
    expected = torch.stack([(w[y[i]] - p[i] @ w).norm() for i in range(2)])
    torch.testing.assert_close(out, expected)


def test_batched_input_gradients_equal_one_by_one():
    cpu()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 3))
    model(torch.randn(8, 6))  # move BatchNorm's running statistics off their defaults
    x, y = torch.randn(7, 6), torch.randint(0, 3, (7,))
    loss = cross_entropy_loss(model)  # eval mode: no batch statistics, samples independent
    batched = input_gradients(loss, x, y)
    single = torch.cat([input_gradients(loss, x[i : i + 1], y[i : i + 1]) for i in range(7)])
    torch.testing.assert_close(batched, single)
    torch.testing.assert_close(grad_norm(loss, x, y, batch_size=3), single.norm(dim=1))


# ----------------------------------------------------------------------------- curvature


def _quadratic(a: torch.Tensor):
    return lambda x, y: 0.5 * torch.einsum("bi,ij,bj->b", x, a, x)


def test_curvature_of_a_quadratic_loss_is_h_times_hessian_on_the_sign_direction():
    a = torch.tensor([[2.0, 1.0, 0.0], [1.0, 3.0, 0.0], [0.0, 0.0, -1.0]])
    x = torch.tensor([[1.5, -2.0, 0.5], [0.3, 0.2, -4.0]])
    y = torch.zeros(2, dtype=torch.long)
    h = 0.01
    s = torch.sign(x @ a) / math.sqrt(3)  # grad = A x (A symmetric), no zero component here
    expected = h * (s @ a).norm(dim=1)
    torch.testing.assert_close(curvature([_quadratic(a)], x, y, h=h), expected)
    # the mean over checkpoints: a second loss with 2A doubles that loss's curvature
    torch.testing.assert_close(
        curvature([_quadratic(a), _quadratic(2 * a)], x, y, h=h, batch_size=1), 1.5 * expected
    )


def test_curvature_of_a_linear_loss_is_zero():
    w = torch.tensor([1.0, -2.0, 3.0])
    x = torch.randn(4, 3)
    out = curvature([lambda x, y: x @ w], x, torch.zeros(4, dtype=torch.long))
    torch.testing.assert_close(out, torch.zeros(4))


# ----------------------------------------------------------------------------- holdout_kl


def test_symmetric_kl_known_zero_and_symmetric():
    p, q = torch.tensor([[0.5, 0.5]]), torch.tensor([[0.9, 0.1]])
    expected = (0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)) + (
        0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)
    )
    a, b = p.log(), q.log() + 3.0  # logits are defined up to a constant
    assert symmetric_kl(a, b).item() == pytest.approx(expected, rel=1e-5)
    torch.testing.assert_close(symmetric_kl(a, b), symmetric_kl(b, a))
    z = torch.randn(5, 4)
    torch.testing.assert_close(symmetric_kl(z, z), torch.zeros(5))


def test_holdout_finetune_stops_without_loss_gain_and_leaves_identical_model_at_zero_kl():
    cpu()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    x, y = torch.randn(20, 4), torch.randint(0, 3, (20,))
    tuned, epochs = finetune_on_holdout(model, x, y, lr=1e-12, max_epochs=30, patience=4, weight_decay=0.0)
    assert epochs == 5  # epoch 1 sets the best loss, 4 epochs without a gain stop it
    torch.testing.assert_close(symmetric_kl(model(x), tuned(x)), torch.zeros(20), atol=1e-6, rtol=0)
    tuned, epochs = finetune_on_holdout(model, x, y, lr=0.1, max_epochs=3, patience=4)
    assert epochs == 3 and symmetric_kl(model(x), tuned(x)).mean() > 1e-3
    assert model[1].weight.grad is None  # the target itself is untouched


# ----------------------------------------------------------------------------- knn_disagreement


def test_knn_disagreement_toy_layout():
    # class 0 at 0, 1, 2; class 1 at 10, 11, and an atypical class-1 sample at 1.5
    z = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [1.5]])
    labels = np.array([0, 0, 0, 1, 1, 1])
    out = knn_disagreement(z, labels, k=2)
    # 0: nn 1, 1.5 -> one of two differs; 1: 1.5, 0 or 2 (0.5, 1, 1) -> 1.5 and 0 (tie: lower index) -> 1/2
    # 2: 1.5, 1 -> 1/2; 10: 11, 2 -> 1/2; 11: 10, 2 -> 1/2; 1.5: 1, 2 -> 2/2
    np.testing.assert_allclose(out, [0.5, 0.5, 0.5, 0.5, 0.5, 1.0])
    np.testing.assert_allclose(knn_disagreement(z, labels, k=1, batch_size=2), [0, 1, 1, 0, 0, 1])


def test_knn_disagreement_refuses_k_too_large():
    with pytest.raises(ValueError, match="1 <= k < N"):
        knn_disagreement(np.zeros((3, 2)), np.zeros(3), k=3)


# ----------------------------------------------------------------------------- join and proxies


def test_join_scores_keeps_config_order_and_refuses_mismatched_ids():
    target = pd.DataFrame({"id": [3, 1, 2], "label": [0, 1, 0], "margin": [0.1, 0.2, 0.3]})
    bank = pd.DataFrame({"id": [1, 2, 3], "memorization": [0.5, 0.6, 0.7]})
    out = join_scores(target, bank, ["memorization", "margin"])
    assert list(out.columns) == ["id", "label", "memorization", "margin"]
    assert out.set_index("id")["memorization"].to_dict() == {1: 0.5, 2: 0.6, 3: 0.7}
    with pytest.raises(ValueError, match="different sample ids"):
        join_scores(target, bank.iloc[:2], ["memorization"])
    with pytest.raises(ValueError, match=r"\['grad_norm'\]"):
        join_scores(target, bank, ["grad_norm"])


def test_proxy_table_correlations_and_time_ratio():
    rng = np.random.default_rng(0)
    mem = rng.permutation(np.linspace(0, 1, 200))
    scores = pd.DataFrame(
        {
            "id": np.arange(200),
            "label": 0,
            "memorization": mem,
            "confidence": 1 - mem**3,
            "grad_norm": rng.normal(size=200),
        }
    )
    table = proxy_table(scores, {"confidence": 2.0, "grad_norm": 1.0}, bank_seconds=100.0).set_index("score")
    conf = table.loc["confidence"]
    assert conf["spearman"] == pytest.approx(-1.0) and conf["aligned_spearman"] == pytest.approx(1.0)
    assert conf["spearman_top"] == pytest.approx(-1.0) and conf["n_top"] == 10
    assert -1.0 < conf["pearson"] < -0.9  # monotone but not linear
    assert conf["time_ratio_to_bank"] == pytest.approx(0.02)
    assert conf["cost"] == "recorded during target training: no extra training"
    # a near-zero own time (a training-dynamics mean, ~0 s) keeps its seconds and gives no ratio
    tiny = proxy_table(scores, {"confidence": 2e-5, "grad_norm": 1.0}, bank_seconds=100.0).set_index("score")
    assert tiny.loc["confidence", "seconds"] == pytest.approx(2e-5) and np.isnan(
        tiny.loc["confidence", "time_ratio_to_bank"]
    )
    assert (
        tiny.loc["grad_norm", "time_ratio_to_bank"] == pytest.approx(0.01)
        and tiny.loc["grad_norm", "cost"] == "from the trained target"
    )
    assert abs(table.loc["grad_norm", "spearman"]) < 0.2
