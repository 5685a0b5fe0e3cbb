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


def test_batchnorm_bank_trains_each_model_as_fit_alone_on_its_subset():
    """The one-at-a-time path that every BatchNorm model takes: each model's rows equal that model
    (initialised from seed * 100_003 + k) trained alone by `fit` on its own subset, in the batch
    order of seed * 7919 + k (the stream of `order_generator`, as in a vectorised group)."""
    from mudiff.training import fit, predict

    tiny = separable(n_train=24, n_test=8, seed=1).to(cpu())
    cfg = BankConfig(
        models=3, epochs=2, batch_size=8, fraction=0.5
    )  # batches of 8 and 4 (BatchNorm needs 2+)
    result = bank.train_bank(tiny, "resnet18", cfg, seed=SEED)
    assert result.engine == "one_by_one" and result.group_size == 1
    np.testing.assert_array_equal(result.mask, bank.inclusion_mask(3, 24, 0.5, SEED))
    recipe = Recipe(cfg.epochs, cfg.batch_size, cfg.lr, cfg.momentum, cfg.weight_decay, "cosine")
    for k in range(cfg.models):
        order_seed = SEED * 7919 + k
        assert torch.equal(
            torch.randperm(12, generator=bank.order_generator(SEED, k)),
            torch.randperm(12, generator=torch.Generator().manual_seed(order_seed)),
        )
        model = build("resnet18", tiny.shape, 2, seed=SEED * 100_003 + k)
        fit(model, tiny, torch.from_numpy(np.flatnonzero(result.mask[k])), recipe, seed=order_seed)
        for split, phi, correct in (
            ("train", result.phi_train, result.correct_train),
            ("test", result.phi_test, result.correct_test),
        ):
            stats = per_sample(predict(model, tiny, split), tiny.split(split)[1])
            np.testing.assert_array_equal(phi[k], stats["phi"].numpy(), err_msg=f"model {k}, {split}")
            np.testing.assert_array_equal(correct[k], stats["correct"].numpy(), err_msg=f"model {k}, {split}")
    # the models differ (their own subsets, seeds and orders), so a swap of any of those would show
    assert not np.array_equal(result.phi_train[0], result.phi_train[1])
    assert not np.array_equal(result.phi_train[1], result.phi_train[2])


def test_the_bank_stage_reads_typed_params_and_writes_the_bank(tmp_path, monkeypatch):
    from mudiff.io import read_arrays, read_json, write_arrays
    from mudiff.stages import train_bank as stage

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    prepared = separable(n_train=40, n_test=16, seed=0)
    write_arrays(
        tmp_path / "arrays.npz", **{k: np.asarray(v) for k, v in dataclasses.asdict(prepared).items()}
    )
    params = {"model": "mlp", "device": "cpu", "bank": dataclasses.asdict(CFG)}
    job = {
        "rule": "train_bank",
        "study": "s",
        "seed": SEED,
        "wildcards": {},
        "params": params,
        "input": {"arrays": str(tmp_path / "arrays.npz")},
        "output": {"bank": str(tmp_path / "bank.npz"), "summary": str(tmp_path / "summary.json")},
    }
    p = stage.build(stage.Params, params)
    assert p.bank == CFG and (p.model, p.device) == ("mlp", "cpu")
    stage.run(job)
    saved, summary = read_arrays(tmp_path / "bank.npz"), read_json(tmp_path / "summary.json")
    direct = bank.train_bank(prepared.to(cpu()), "mlp", CFG, seed=SEED)
    np.testing.assert_array_equal(saved["mask"], direct.mask)
    np.testing.assert_array_equal(saved["phi_train"], direct.phi_train)
    assert summary["models"] == CFG.models and summary["engine"] == direct.engine
    with pytest.raises(TypeError, match="unknown key"):
        stage.run({**job, "params": {**params, "bank_size": 3}})
