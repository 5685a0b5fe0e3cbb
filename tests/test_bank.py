"""The model bank, through both engines: inclusion mask, shapes, vectorised training = separate training,
group size."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tinydata import cpu, separable
from torch import nn

from mudiff import bank
from mudiff.config import BankConfig
from mudiff.models import build
from mudiff.training import Recipe, lr_lambda, per_sample

CFG = BankConfig(models=8, epochs=3, batch_size=16)
SEED = 3


def test_inclusion_mask_exact_row_sums_and_determinism():
    mask = bank.inclusion_mask(50, 20, 0.7, seed=1)
    assert mask.shape == (50, 20) and mask.dtype == bool
    assert (mask.sum(1) == 14).all()  # round(0.7 * 20) = 14 in every row
    # each sample is in some models and out of others (50 rows of 14/20: all-in or all-out is ~impossible)
    assert (mask.any(0)).all() and (~mask.all(0)).all()
    np.testing.assert_array_equal(mask, bank.inclusion_mask(50, 20, 0.7, seed=1))
    assert not np.array_equal(mask, bank.inclusion_mask(50, 20, 0.7, seed=2))
    assert (bank.inclusion_mask(3, 7, 0.5, seed=0).sum(1) == 4).all()  # round(3.5) = 4


@pytest.fixture(scope="module")
def data():
    return separable(n_train=40, n_test=16, seed=0).to(cpu())


@pytest.fixture(scope="module", params=[True, False], ids=["stacked_mlp", "vmap"])
def result(data, request):
    with pytest.MonkeyPatch.context() as mp:  # the same groups on any host: a 32 MiB cache
        mp.setattr(bank, "last_level_cache_bytes", lambda: 32 * 2**20)
        return bank.train_bank(data, "mlp", CFG, seed=SEED, fast=request.param)


def test_train_bank_shapes(result):
    r = result
    assert r.mask.shape == (8, 40) and (r.mask.sum(1) == 28).all()  # round(0.7 * 40)
    np.testing.assert_array_equal(r.mask, bank.inclusion_mask(8, 40, 0.7, SEED))
    assert r.phi_train.shape == (8, 40) and r.phi_train.dtype == np.float32
    assert r.correct_train.shape == (8, 40) and r.correct_train.dtype == bool
    assert r.phi_test.shape == (8, 16) and r.correct_test.shape == (8, 16)
    assert np.isfinite(r.phi_train).all() and np.isfinite(r.phi_test).all()
    assert r.vectorized and r.group_size == 8  # 8 of these small perceptrons fit half of 32 MiB
    # correct <=> phi > 0 for two classes (p_y > 1/2)
    np.testing.assert_array_equal(r.correct_train, r.phi_train > 0)
    # the problem is linearly separable: the bank has learned it
    assert r.correct_test.mean() > 0.9


def test_vectorized_bank_equals_separate_training(data, result):
    """Each model of the vmapped group, retrained alone with plain torch on the same batches."""
    n_in = int(round(CFG.fraction * 40))
    steps = math.ceil(n_in / CFG.batch_size)
    mask = result.mask
    subsets = torch.from_numpy(np.stack([np.flatnonzero(r) for r in mask]))
    recipe = Recipe(CFG.epochs, CFG.batch_size, CFG.lr, CFG.momentum, CFG.weight_decay, "cosine")
    for k in (0, 5):
        # the batch order as _train_group draws it: model k's own generator, a permutation per epoch
        gen = bank.order_generator(SEED, k)
        orders = [subsets[k][torch.randperm(n_in, generator=gen)] for _ in range(CFG.epochs)]
        model = build("mlp", data.shape, 2, seed=SEED * 100_003 + k)
        opt = torch.optim.SGD(
            model.parameters(), lr=CFG.lr, momentum=CFG.momentum, weight_decay=CFG.weight_decay
        )
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(recipe, CFG.epochs * steps))
        for order in orders:
            for i in range(0, n_in, CFG.batch_size):
                pos = order[i : i + CFG.batch_size]
                x, y = data.train_batch(pos)
                loss = F.cross_entropy(model(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
        with torch.no_grad():
            phi = per_sample(model(data.normalize(data.x_train)), data.y_train)["phi"].numpy()
            phi_test = per_sample(model(data.normalize(data.x_test)), data.y_test)["phi"].numpy()
        np.testing.assert_allclose(result.phi_train[k], phi, atol=1e-4, rtol=1e-4)
        np.testing.assert_allclose(result.phi_test[k], phi_test, atol=1e-4, rtol=1e-4)


def test_train_bank_is_deterministic(data, result):
    again = bank.train_bank(data, "mlp", CFG, seed=SEED, fast=result.engine == "stacked_mlp")
    np.testing.assert_array_equal(again.phi_train, result.phi_train)


def test_bank_does_not_depend_on_group_size(data, result):
    halves = bank.train_bank(
        data, "mlp", dataclasses.replace(CFG, group_size=4), seed=SEED, fast=result.engine == "stacked_mlp"
    )
    assert halves.group_size == 4
    np.testing.assert_array_equal(halves.mask, result.mask)
    np.testing.assert_allclose(halves.phi_train, result.phi_train, atol=1e-4)


def bn_cnn(in_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """A tiny CNN with BatchNorm2d and BatchNorm1d, registered as a model for the BatchNorm bank tests."""
    c, h, w = in_shape
    return nn.Sequential(
        nn.Conv2d(c, 4, 3, padding=1, bias=False),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(4 * (h // 2) * (w // 2), 8),
        nn.BatchNorm1d(8),
        nn.ReLU(),
        nn.Linear(8, num_classes),
    )


BN_CFG = BankConfig(models=3, epochs=3, batch_size=8)  # 28 of 40 samples a model: batches of 8, 8, 8, 4
BN_TOL = dict(atol=1e-5, rtol=1e-5)


@pytest.fixture
def bn_model(monkeypatch):
    from mudiff.models.registry import MODELS

    monkeypatch.setitem(MODELS, "bn_cnn", f"{__name__}:bn_cnn")
    return "bn_cnn"


def _train_alone(name: str, data, positions: torch.Tensor, cfg: BankConfig, k: int) -> nn.Module:
    """Bank model k (seed SEED) trained alone with plain torch: the module in train mode, torch.optim.SGD
    and the bank's schedule, on the batch order the bank draws for it (`order_generator`)."""
    n_in = len(positions)
    recipe = Recipe(cfg.epochs, cfg.batch_size, cfg.lr, cfg.momentum, cfg.weight_decay, "cosine")
    model = build(name, data.shape, data.num_classes, seed=bank.init_seed(SEED, k)).train()
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lr_lambda(recipe, cfg.epochs * math.ceil(n_in / cfg.batch_size))
    )
    gen = bank.order_generator(SEED, k)
    for _ in range(cfg.epochs):
        order = positions[torch.randperm(n_in, generator=gen)]
        for i in range(0, n_in, cfg.batch_size):
            x, y = data.train_batch(order[i : i + cfg.batch_size])
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return model


def _assert_same_state(ours: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor], what: str) -> None:
    """Parameters and buffers (running mean and variance, batch counts) by name."""
    assert ours.keys() == theirs.keys(), what
    for name, ref in theirs.items():
        if ref.dtype == torch.long:  # num_batches_tracked
            assert torch.equal(ours[name], ref), f"{what}: {name}"
        else:
            torch.testing.assert_close(ours[name], ref, **BN_TOL, msg=lambda m: f"{what}: {name}: {m}")


def test_batchnorm_bank_equals_each_model_trained_alone(data, bn_model):
    """A stacked BatchNorm group: every model's parameters and BatchNorm buffers after training, and its
    phi and correctness (scored in eval mode, on the running statistics), equal that model trained alone
    (`_train_alone`) and scored by `predict`; the bank's rows do not depend on the group size."""
    from mudiff.training import predict

    cfg = BN_CFG
    mask = bank.inclusion_mask(cfg.models, 40, cfg.fraction, SEED)
    x_train = data.normalize(data.x_train)
    group = bank._fit_group(bn_model, data, x_train, mask, 0, cfg, SEED, None, "vmap")
    steps = cfg.epochs * math.ceil(mask[0].sum() / cfg.batch_size)
    result = bank.train_bank(data, bn_model, cfg, seed=SEED)  # the whole bank: one group of 3 (auto)
    assert result.engine == "vmap" and result.vectorized and result.group_size == cfg.models
    np.testing.assert_array_equal(result.mask, mask)
    for k in range(cfg.models):
        state = group.state_dict(k)
        assert state["1.num_batches_tracked"] == state["6.num_batches_tracked"] == steps
        assert not torch.allclose(state["1.running_var"], torch.ones(4))  # the statistics have moved
        alone = _train_alone(bn_model, data, torch.from_numpy(np.flatnonzero(mask[k])), cfg, k)
        _assert_same_state(state, alone.state_dict(), f"model {k}")
        for split, phi, correct in (
            ("train", result.phi_train, result.correct_train),
            ("test", result.phi_test, result.correct_test),
        ):
            stats = per_sample(predict(alone, data, split), data.split(split)[1])
            np.testing.assert_allclose(phi[k], stats["phi"].numpy(), **BN_TOL, err_msg=f"model {k}, {split}")
            np.testing.assert_array_equal(correct[k], stats["correct"].numpy(), err_msg=f"model {k}, {split}")
        # group-size independence: model k trained in a group of one is model k of the group of three
        single = bank._fit_group(bn_model, data, x_train, mask[k : k + 1], k, cfg, SEED, None, "vmap")
        _assert_same_state(single.state_dict(0), state, f"model {k} alone in its group")
    # the models differ (their own subsets, seeds and orders), so a swap of any of those would show
    assert not np.allclose(result.phi_train[0], result.phi_train[1])
    assert not torch.allclose(group.state_dict(0)["1.running_mean"], group.state_dict(1)["1.running_mean"])
    ones = bank.train_bank(data, bn_model, dataclasses.replace(cfg, group_size=1), seed=SEED)
    assert ones.group_size == 1
    np.testing.assert_allclose(ones.phi_train, result.phi_train, **BN_TOL)
    np.testing.assert_allclose(ones.phi_test, result.phi_test, **BN_TOL)


def test_the_bank_stage_reads_typed_params_and_writes_the_bank(tmp_path, monkeypatch):
    from mudiff.io import read_arrays, read_json, write_arrays
    from mudiff.stages import train_bank as stage

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    prepared = separable(n_train=40, n_test=16, seed=0)
    write_arrays(
        tmp_path / "arrays.npz", **{k: np.asarray(v) for k, v in dataclasses.asdict(prepared).items()}
    )
    cfg = dataclasses.replace(CFG, model="mlp")  # the rule names the bank's architecture
    params = {"device": "cpu", "bank": dataclasses.asdict(cfg), "shard": 0}
    job = {
        "rule": "train_bank",
        "study": "s",
        "seed": SEED,
        "wildcards": {"shard": "0"},
        "params": params,
        "input": {"arrays": str(tmp_path / "arrays.npz")},
        "output": {"bank": str(tmp_path / "0.npz"), "summary": str(tmp_path / "0.json")},
    }
    p = stage.build(stage.Params, params)
    assert p.bank == cfg and (p.device, p.shard) == ("cpu", 0)
    stage.run(job)
    saved, summary = read_arrays(tmp_path / "0.npz"), read_json(tmp_path / "0.json")
    direct = bank.train_bank(prepared.to(cpu()), "mlp", CFG, seed=SEED)
    np.testing.assert_array_equal(saved["mask"], direct.mask)
    np.testing.assert_array_equal(saved["phi_train"], direct.phi_train)
    assert summary["models"] == CFG.models and summary["engine"] == direct.engine
    assert (summary["first"], summary["stop"], summary["model"]) == (0, CFG.models, "mlp")
    with pytest.raises(TypeError, match="unknown key"):
        stage.run({**job, "params": {**params, "bank_size": 3}})
