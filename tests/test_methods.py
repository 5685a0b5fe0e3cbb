"""Unlearning methods on a tiny task whose forget set is six memorised (label-flipped) samples."""

from __future__ import annotations

import ast
import copy
import re

import numpy as np
import pytest
import torch
from tinydata import cpu, separable

from mudiff import methods
from mudiff.methods.base import UnlearnTask
from mudiff.models import build
from mudiff.training import Recipe, accuracy, fit

RECIPE = Recipe(epochs=30, batch_size=16, lr=0.05, schedule="cosine")


BASE = ["retrain", "finetune", "neggrad", "neggrad_plus", "l1_sparse", "random_label", "salun", "scrub"]


@pytest.mark.parametrize("name", ["nope", "rum_f:retrain", "rum:finetune", "rsu:", "rsu:nope", "shuffle"])
def test_get_unknown_method_lists_known(name):
    with pytest.raises(
        ValueError, match=rf"unknown unlearning method {re.escape(repr(name))}; known: \["
    ) as err:
        methods.get(name)
    known = ast.literal_eval(str(err.value).split("known: ")[1])
    assert known == sorted(methods.names())
    assert set(BASE) | {"rum", "rum_f:neggrad_plus", "shuffle:salun", "rsu:scrub"} <= set(known)
    assert not {"rum_f:retrain", "rsu:retrain"} & set(known)  # retrain starts from scratch: nothing to wrap


def test_method_params_registry():
    params = methods.method_params()
    assert [n for n in params if ":" not in n and n != "rum"] == BASE
    assert params["neggrad_plus"]().alpha == 0.99 and params["finetune"]().epochs == 10
    # SPEC's defaults
    assert (params["neggrad"]().lr, params["neggrad"]().epochs) == (1e-4, 5)
    assert (params["l1_sparse"]().gamma, params["l1_sparse"]().lr, params["l1_sparse"]().epochs) == (
        5e-4,
        0.01,
        10,
    )
    assert (params["random_label"]().lr, params["random_label"]().epochs) == (0.01, 10)
    assert (params["salun"]().share, params["salun"]().lr, params["salun"]().epochs) == (0.5, 0.01, 10)
    s = params["scrub"]()
    assert (s.max_steps, s.epochs, s.lr, s.temperature) == (4, 5, 5e-3, 4.0)
    assert params["rum"]().steps == {"low": "none", "mid": "finetune", "high": "salun"}
    assert params["rsu:finetune"]().order == "easy_to_hard" and params["rsu:finetune"]().chunks == 3


def test_meta_methods_depend_on_their_own_modules():
    assert methods.modules("rum_f:neggrad_plus") == ["mudiff.methods.rum", "mudiff.methods.neggrad_plus"]
    assert methods.modules("rum", {"steps": {"low": "none", "mid": "scrub", "high": "salun"}}) == [
        "mudiff.methods.rum",
        "mudiff.methods.salun",
        "mudiff.methods.scrub",
    ]
    assert methods.modules("finetune") == ["mudiff.methods.finetune"]
    assert methods.needs_scores("rsu:finetune") and not methods.needs_scores("salun")


@pytest.fixture(scope="module")
def setup():
    data = separable(n_train=64, n_test=16, seed=0, flip=6).to(cpu())
    forget, retain = torch.arange(6), torch.arange(6, 64)
    target = fit(build("mlp", data.shape, 2, seed=0), data, torch.arange(64), RECIPE, seed=0)
    before = {
        "forget": accuracy(target, data, "train", forget),
        "retain": accuracy(target, data, "train", retain),
    }
    # precondition: the target has memorised the six flipped labels and fits the rest
    assert before == {"forget": 100.0, "retain": 100.0}
    return data, forget, retain, target, before


def _task(data, forget, retain, epochs_seen, scores=None):
    return UnlearnTask(
        data,
        forget,
        retain,
        "mlp",
        RECIPE,
        seed=0,
        on_epoch_end=lambda m, e: epochs_seen.append(e),
        forget_scores=scores,
    )


def test_finetune_keeps_retain_accuracy(setup):
    data, forget, retain, target, before = setup
    seen = []
    m = methods.get("finetune")
    out = m.unlearn(
        copy.deepcopy(target), _task(data, forget, retain, seen), m.Params(lr=0.01, epochs=2, batch_size=16)
    )
    assert seen == [1, 2]
    # tolerance: none; on this task finetune keeps every retain sample right
    assert accuracy(out, data, "train", retain) >= before["retain"]
    assert accuracy(out, data, "test") >= 90.0


def test_neggrad_plus_lowers_forget_accuracy(setup):
    data, forget, retain, target, before = setup
    seen = []
    m = methods.get("neggrad_plus")
    model = copy.deepcopy(target)
    out = m.unlearn(
        model, _task(data, forget, retain, seen), m.Params(alpha=0.5, lr=0.2, epochs=1, batch_size=16)
    )
    assert seen == [1]
    after = accuracy(out, data, "train", forget)
    assert after < before["forget"]
    # the ascent, not just instability: at most one of the six is still right (descent on F keeps all six)
    assert after <= 100.0 / 6
    # the target itself is untouched
    assert accuracy(target, data, "train", forget) == before["forget"]


@pytest.mark.parametrize("alpha", [0.9, 0.2])
def test_neggrad_plus_step_weighs_retain_by_alpha_and_forget_by_one_minus_alpha(alpha):
    """One SGD step (momentum 0, weight decay 0, batches holding all of R and all of F, so the step
    does not depend on the shuffles) moves the parameters by exactly -lr * grad(alpha * CE(R) -
    (1 - alpha) * CE(F)). At an asymmetric alpha this tells the two weights apart (at 0.5, swapping
    them changes nothing)."""
    import torch.nn.functional as F

    data = separable(n_train=64, n_test=16, seed=0, flip=6).to(cpu())
    forget, retain = torch.arange(6), torch.arange(6, 64)
    start = build("mlp", data.shape, 2, seed=1)  # untrained: both losses have sizeable gradients
    lr, seen = 0.1, []
    m = methods.get("neggrad_plus")
    out = m.unlearn(
        copy.deepcopy(start),
        _task(data, forget, retain, seen),
        m.Params(alpha=alpha, lr=lr, epochs=1, batch_size=64, momentum=0.0, weight_decay=0.0),
    )
    assert seen == [1]
    moved = torch.cat(
        [(p1.detach() - p0.detach()).flatten() for p0, p1 in zip(start.parameters(), out.parameters())]
    )

    def update(w_retain, w_forget):
        """-lr * the gradient at `start` of w_retain * CE(R) - w_forget * CE(F), by autograd."""
        net = copy.deepcopy(start)
        (xr, yr), (xf, yf) = data.train_batch(retain), data.train_batch(forget)
        loss = w_retain * F.cross_entropy(net(xr), yr) - w_forget * F.cross_entropy(net(xf), yf)
        return torch.cat([-lr * g.flatten() for g in torch.autograd.grad(loss, list(net.parameters()))])

    def rel_err(expected):
        return float((moved - expected).norm() / expected.norm())

    # tolerance: float32 rounding of the batch means taken in shuffled order (observed ~2e-6; the wrong weightings below are off by 0.08 to 13)
    assert rel_err(update(alpha, 1 - alpha)) < 1e-4
    # the weightings a slip would give (swapped, either weight dropped, either term dropped) are far off
    for wrong in [(1 - alpha, alpha), (1.0, 1 - alpha), (alpha, 1.0), (alpha, 0.0), (0.0, 1 - alpha)]:
        assert rel_err(update(*wrong)) > 1e-2, wrong


def test_retrain_never_sees_the_forget_set(setup):
    data, forget, retain, target, before = setup
    m = methods.get("retrain")
    out = m.unlearn(target, _task(data, forget, retain, []), m.Params())
    assert out is not target
    # a fresh model trained on R predicts the forget samples' visible class, not their flipped labels
    assert accuracy(out, data, "train", forget) <= 50.0
    assert accuracy(out, data, "train", retain) == 100.0


def test_neggrad_lowers_forget_accuracy(setup):
    data, forget, retain, target, before = setup
    seen = []
    m = methods.get("neggrad")
    out = m.unlearn(
        copy.deepcopy(target), _task(data, forget, retain, seen), m.Params(lr=0.05, epochs=3, batch_size=6)
    )
    assert seen == [1, 2, 3]  # one epoch = one pass over F
    assert accuracy(out, data, "train", forget) < before["forget"]


def test_random_label_lowers_forget_accuracy(setup):
    data, forget, retain, target, before = setup
    seen = []
    m = methods.get("random_label")
    out = m.unlearn(
        copy.deepcopy(target), _task(data, forget, retain, seen), m.Params(lr=0.05, epochs=5, batch_size=16)
    )
    assert seen == [1, 2, 3, 4, 5]
    assert accuracy(out, data, "train", forget) <= 50.0
    assert accuracy(out, data, "train", retain) >= 95.0


def test_random_labels_are_never_the_true_label(setup):
    from mudiff.methods.random_label import relabelled

    data = setup[0]
    everything = torch.arange(len(data.y_train))
    new = relabelled(data, everything, seed=0)
    assert (new.y_train != data.y_train).all()
    assert (new.x_train is data.x_train) and not torch.equal(data.y_train, new.y_train)


def test_l1_sparse_shrinks_the_weights_l1_norm(setup):
    data, forget, retain, target, before = setup
    m = methods.get("l1_sparse")
    norm = lambda net: sum(p.abs().sum().item() for p in net.parameters())  # noqa: E731
    plain = methods.get("finetune").unlearn(
        copy.deepcopy(target),
        _task(data, forget, retain, []),
        m.Params(gamma=0.0, lr=0.01, epochs=3, weight_decay=0),
    )
    sparse = m.unlearn(
        copy.deepcopy(target),
        _task(data, forget, retain, []),
        m.Params(gamma=0.05, lr=0.01, epochs=3, weight_decay=0),
    )
    assert norm(sparse) < norm(plain)


def test_salun_mask_holds_exactly_the_share_with_the_largest_gradients(setup):
    from mudiff.methods.salun import saliency_mask

    data, forget, retain, target, before = setup
    model = copy.deepcopy(target)
    masks = saliency_mask(model, data, forget, share=0.3)
    model.zero_grad()
    torch.nn.functional.cross_entropy(model(data.train_batch(forget)[0]), data.y_train[forget]).backward()
    grads = torch.cat([p.grad.abs().flatten() for _, p in model.named_parameters()])
    mask = torch.cat([masks[n].flatten() for n, _ in model.named_parameters()])
    assert int(mask.sum()) == round(0.3 * mask.numel())
    assert grads[mask].min() >= grads[~mask].max()
    assert mask[grads.argmax()] and not mask[grads.argmin()]


def test_salun_changes_only_the_masked_weights(setup):
    from mudiff.methods.salun import saliency_mask

    data, forget, retain, target, before = setup
    m = methods.get("salun")
    params = m.Params(share=0.5, lr=0.05, epochs=2, batch_size=16, weight_decay=0.0)
    masks = saliency_mask(copy.deepcopy(target), data, forget, 0.5)
    out = m.unlearn(copy.deepcopy(target), _task(data, forget, retain, []), params)
    old = dict(target.named_parameters())
    for name, p in out.named_parameters():
        moved = (p != old[name]).detach()
        assert not (moved & ~masks[name]).any(), name
    assert any(((p != old[n]) & masks[n]).any() for n, p in out.named_parameters())
    assert accuracy(out, data, "train", forget) < before["forget"]


@pytest.mark.parametrize(
    "epochs,max_steps,expected",
    [
        (3, 2, ["max", "min", "max", "min", "min"]),
        (2, 0, ["min", "min"]),
        (2, 4, ["max", "min", "max", "min"]),
    ],
)
def test_scrub_alternates_max_and_min_steps(setup, epochs, max_steps, expected):
    data, forget, retain, target, before = setup
    m = methods.get("scrub")
    seen = []
    task = _task(data, forget, retain, seen)
    params = m.Params(epochs=epochs, max_steps=max_steps, lr=0.05, batch_size=16)
    m.unlearn(copy.deepcopy(target), task, params)
    assert task.notes["scrub_passes"] == expected
    assert seen == list(range(1, epochs + 1))


def test_scrub_max_steps_raise_the_teachers_kl_on_the_forget_set(setup):
    from mudiff.methods.scrub import kl

    data, forget, retain, target, before = setup
    m = methods.get("scrub")
    x = data.train_batch(forget)[0]

    def forget_kl(max_steps):
        # Student equals teacher at the start, where the KL's gradient is zero: the min-steps first move it.
        params = m.Params(epochs=3, max_steps=max_steps, lr=0.05, batch_size=6)
        out = m.unlearn(copy.deepcopy(target), _task(data, forget, retain, []), params)
        with torch.no_grad():
            return float(kl(out(x), target(x), 4.0))

    assert forget_kl(3) > 20 * forget_kl(0)  # measured: ~540 against ~2.3; descending instead gives ~17


def test_scrub_batch_sizes_f_and_r_separately(monkeypatch):
    """The SCRUB code batches F (32 to 64) and R (128) separately: count the optimizer steps of each pass."""
    from mudiff import training
    from mudiff.methods import scrub

    m = methods.get("scrub")
    assert (m.Params().forget_batch_size, m.Params().batch_size) == (32, 128)
    data = separable(n_train=200, n_test=8, seed=0).to(cpu())
    forget, retain = torch.arange(43), torch.arange(43, 200)  # |F| = 43, |R| = 157
    model = build("mlp", data.shape, 2, seed=0)
    steps, passes = [0], []
    real_step, real_fit = training.SGD.step, scrub.fit

    def counting_step(self, *args, **kwargs):
        steps[0] += 1
        return real_step(self, *args, **kwargs)

    def recording_fit(net, data_, positions, recipe, seed, **kwargs):
        before = steps[0]
        out = real_fit(net, data_, positions, recipe, seed, **kwargs)
        passes.append((kwargs["desc"], len(positions), recipe.batch_size, steps[0] - before))
        return out

    monkeypatch.setattr(training.SGD, "step", counting_step)
    monkeypatch.setattr(scrub, "fit", recording_fit)
    m.unlearn(model, _task(data, forget, retain, []), m.Params(epochs=1, max_steps=1, forget_batch_size=16))
    # max pass: ceil(43 / 16) = 3 steps (F's own batch size); min pass: ceil(157 / 128) = 2 steps (R's default)
    assert passes == [("scrub max", 43, 16, 3), ("scrub min", 157, 128, 2)]


# Scores of the six forget samples: the mem column is a hard-first ranking, the conf column an easy-first one.
MEM = [0.5, 0.1, 0.9, 0.3, 0.7, 0.2]


def _scores(forget):
    import pandas as pd

    return pd.DataFrame({"id": forget.numpy(), "memorization": MEM, "confidence": [1 - v for v in MEM]})


@pytest.mark.parametrize("score", ["memorization", "confidence"])
def test_rum_refines_low_to_high_and_retain_sets_shrink(setup, score):
    from mudiff.methods import rum

    data, forget, retain, target, before = setup
    seen = []
    task = _task(data, forget, retain, seen, _scores(forget))
    m = methods.get("rum_f:finetune")
    params = m.Params(score=score, inner={"epochs": 3, "lr": 0.01, "batch_size": 16})
    steps = rum.plan("rum_f", "finetune", task, params)
    # by memorization (high = hard) whichever column: confidence is direction-aware
    assert [s.name for s in steps] == ["low", "mid", "high"]
    assert [sorted(s.forget.tolist()) for s in steps] == [[1, 5], [0, 3], [2, 4]]
    m.unlearn(copy.deepcopy(target), task, params)
    log = task.notes["steps"]
    assert [s["name"] for s in log] == ["low", "mid", "high"]
    assert [s["retain"] for s in log] == [62, 60, 58]  # train minus everything forgotten so far
    assert [s["epochs"] for s in log] == [1, 1, 1]  # vanilla finetune's 3 epochs split over 3 steps
    assert seen == [1, 2, 3]  # the recorder's counter runs on across steps


def test_rum_skips_none_and_runs_a_method_per_subset(setup):
    data, forget, retain, target, before = setup
    seen = []
    task = _task(data, forget, retain, seen, _scores(forget))
    m = methods.get("rum")
    params = m.Params(
        steps={"low": "none", "mid": "finetune", "high": "neggrad"},
        inner={"finetune": {"epochs": 4}, "neggrad": {"epochs": 2, "lr": 0.01}},
    )
    m.unlearn(copy.deepcopy(target), task, params)
    log = task.notes["steps"]
    # finetune's 4 epochs split over the two steps that run; neggrad's epoch is a pass over its subset: kept
    assert [(s["name"], s["method"], s["epochs"]) for s in log] == [
        ("low", "none", 0),
        ("mid", "finetune", 2),
        ("high", "neggrad", 2),
    ]
    assert [s["retain"] for s in log] == [62, 60, 58]
    assert seen == [1, 2, 3, 4]


def test_rum_without_its_score_names_the_available_ones(setup):
    data, forget, retain, target, before = setup
    m = methods.get("rum_f:finetune")
    with pytest.raises(ValueError, match=r"lacks; available: \['confidence', 'memorization'\]"):
        m.unlearn(
            copy.deepcopy(target),
            _task(data, forget, retain, [], _scores(forget)),
            m.Params(score="curvature"),
        )


def test_shuffle_uses_seeded_random_thirds(setup):
    from mudiff.methods import rum

    data, forget, retain, target, before = setup
    task = _task(data, forget, retain, [], _scores(forget))
    m = methods.get("shuffle:finetune")
    a = [sorted(s.forget.tolist()) for s in rum.plan("shuffle", "finetune", task, m.Params())]
    b = [sorted(s.forget.tolist()) for s in rum.plan("shuffle", "finetune", task, m.Params())]
    assert a == b and [len(p) for p in a] == [2, 2, 2] and sorted(sum(a, [])) == list(range(6))


def test_sequential_budget_splits_retain_epochs_and_keeps_forget_epochs():
    from mudiff.methods.sequential import split_epochs

    assert (
        split_epochs(5, 3) == [1, 2, 2]
        and split_epochs(10, 3) == [3, 3, 4]
        and split_epochs(2, 3) == [1, 1, 1]
    )
    assert sum(split_epochs(10, 2)) == 10


@pytest.mark.parametrize(
    "order,expected",
    [
        ("easy_to_hard", [[1, 5], [0, 3], [2, 4]]),
        ("hard_to_easy", [[2, 4], [0, 3], [1, 5]]),
    ],
)
def test_rsu_unlearns_chunks_in_the_configured_order(setup, order, expected):
    import pandas as pd

    data, forget, retain, target, before = setup
    seen = []
    scores = pd.DataFrame({"id": forget.numpy(), "privacy_risk": MEM})
    task = _task(data, forget, retain, seen, scores)
    m = methods.get("rsu:finetune")
    chunks = []
    original = methods.get("finetune").unlearn
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            "mudiff.methods.finetune.unlearn",
            lambda model, t, p: chunks.append(sorted(t.forget.tolist())) or original(model, t, p),
        )
        m.unlearn(copy.deepcopy(target), task, m.Params(order=order, inner={"epochs": 3}))
    assert chunks == expected
    assert [s["retain"] for s in task.notes["steps"]] == [62, 60, 58]
    assert seen == [1, 2, 3] and "rsu_fallback" not in task.notes


def test_rsu_random_order_is_seeded_and_covers_f():
    from mudiff.methods.rsu import ranking

    values = np.array(MEM)
    a, b = ranking(values, "random", 0), ranking(values, "random", 0)
    assert a.tolist() == b.tolist() and sorted(a.tolist()) == list(range(6))
    assert ranking(values, "random", 1).tolist() != a.tolist()


def test_rsu_falls_back_to_the_targets_loss_with_a_warning(setup):
    data, forget, retain, target, before = setup
    task = _task(data, forget, retain, [], _scores(forget))
    m = methods.get("rsu:finetune")
    with pytest.warns(UserWarning, match="no 'privacy_risk' column"):
        m.unlearn(copy.deepcopy(target), task, m.Params(chunks=2, inner={"epochs": 2}))
    assert task.notes["rsu_fallback"] == "target loss"
    assert [s["forget"] for s in task.notes["steps"]] == [3, 3]


@pytest.mark.parametrize("scores", [None, "without_the_column"])
def test_rsu_random_order_ranks_by_nothing_and_never_falls_back(setup, scores, recwarn, capsys):
    from mudiff.methods import rsu

    data, forget, retain, target, before = setup
    task = _task(
        data, forget, retain, [], None if scores is None else _scores(forget)
    )  # no privacy_risk either way
    m = methods.get("rsu:finetune")
    chunks = []
    original = methods.get("finetune").unlearn
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            "mudiff.methods.finetune.unlearn",
            lambda model, t, p: chunks.append(t.forget.tolist()) or original(model, t, p),
        )
        mp.setattr(rsu, "risk", lambda *a, **k: pytest.fail("order: random must not compute a risk"))
        m.unlearn(copy.deepcopy(target), task, m.Params(order="random", inner={"epochs": 3}))
    expected = rsu.random_order(6, task.seed)
    assert sum(chunks, []) == forget[expected].tolist() and [len(c) for c in chunks] == [2, 2, 2]
    assert (
        expected.tolist() == rsu.ranking(np.array(MEM), "random", task.seed).tolist()
    )  # the same shuffle as before
    assert "rsu_fallback" not in task.notes and task.notes["rsu_order"] == "random"
    assert (
        not [w for w in recwarn if "RSU" in str(w.message)]
        and "ranking F by the target's loss" not in capsys.readouterr().out
    )
