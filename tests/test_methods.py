"""Unlearning methods on a tiny task whose forget set is six memorised (label-flipped) samples."""

from __future__ import annotations

import copy

import pytest
import torch

from mudiff import methods
from mudiff.methods.base import UnlearnTask
from mudiff.models import build
from mudiff.training import Recipe, accuracy, fit
from tinydata import cpu, separable

RECIPE = Recipe(epochs=30, batch_size=16, lr=0.05, schedule="cosine")


def test_get_unknown_method_lists_known():
    with pytest.raises(ValueError, match=r"unknown unlearning method 'nope'; known: \['finetune', 'neggrad_plus', 'retrain'\]"):
        methods.get("nope")


def test_method_params_registry():
    params = methods.method_params()
    assert sorted(params) == ["finetune", "neggrad_plus", "retrain"]
    assert params["neggrad_plus"]().alpha == 0.99 and params["finetune"]().epochs == 10


@pytest.fixture(scope="module")
def setup():
    data = separable(n_train=64, n_test=16, seed=0, flip=6).to(cpu())
    forget, retain = torch.arange(6), torch.arange(6, 64)
    target = fit(build("mlp", data.shape, 2, seed=0), data, torch.arange(64), RECIPE, seed=0)
    before = {"forget": accuracy(target, data, "train", forget), "retain": accuracy(target, data, "train", retain)}
    # precondition: the target has memorised the six flipped labels and fits the rest
    assert before == {"forget": 100.0, "retain": 100.0}
    return data, forget, retain, target, before


def _task(data, forget, retain, epochs_seen):
    return UnlearnTask(data, forget, retain, "mlp", RECIPE, seed=0, on_epoch_end=lambda m, e: epochs_seen.append(e))


def test_finetune_keeps_retain_accuracy(setup):
    data, forget, retain, target, before = setup
    seen = []
    m = methods.get("finetune")
    out = m.unlearn(copy.deepcopy(target), _task(data, forget, retain, seen), m.Params(lr=0.01, epochs=2, batch_size=16))
    assert seen == [1, 2]
    assert accuracy(out, data, "train", retain) >= before["retain"]
    assert accuracy(out, data, "test") >= 90.0


def test_neggrad_plus_lowers_forget_accuracy(setup):
    data, forget, retain, target, before = setup
    seen = []
    m = methods.get("neggrad_plus")
    model = copy.deepcopy(target)
    out = m.unlearn(model, _task(data, forget, retain, seen), m.Params(alpha=0.5, lr=0.2, epochs=1, batch_size=16))
    assert seen == [1]
    after = accuracy(out, data, "train", forget)
    assert after < before["forget"]
    # the ascent, not just instability: at most one of the six is still right (descent on F keeps all six)
    assert after <= 100.0 / 6
    # the target itself is untouched
    assert accuracy(target, data, "train", forget) == before["forget"]


def test_retrain_never_sees_the_forget_set(setup):
    data, forget, retain, target, before = setup
    m = methods.get("retrain")
    out = m.unlearn(target, _task(data, forget, retain, []), m.Params())
    assert out is not target
    # a fresh model trained on R predicts the forget samples' visible class, not their flipped labels
    assert accuracy(out, data, "train", forget) <= 50.0
    assert accuracy(out, data, "train", retain) == 100.0
