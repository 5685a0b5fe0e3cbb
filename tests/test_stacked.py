"""The bank's engines: the hand-written perceptron path against autograd, which models it takes,
and how the bank sizes its groups."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mudiff import bank
from mudiff.bank.engines import StackedMLP, VmapEngine, choose_engine, perceptron_layers
from mudiff.models import build

CPU = torch.device("cpu")


def _models(g: int, shape=(1, 4, 4), classes=3, hidden=(6, 5)):
    from mudiff.models.mlp import MLP

    out = []
    for k in range(g):
        torch.manual_seed(k)
        out.append(MLP(shape, classes, hidden=hidden))
    return out


def _autograd_grads(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    loss = F.cross_entropy(model(x), y)
    return list(torch.autograd.grad(loss, list(model.parameters())))


@pytest.mark.parametrize("engine_cls", [StackedMLP, VmapEngine])
def test_engine_gradients_equal_each_models_own_autograd_gradient(engine_cls):
    g, b = 3, 7
    models = _models(g)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(g, b, 1, 4, 4, generator=gen)
    y = torch.randint(0, 3, (g, b), generator=gen)
    engine = engine_cls(copy.deepcopy(models), CPU)
    grads = engine.gradients(x, y)
    for k, model in enumerate(models):
        for ours, ref in zip(grads, _autograd_grads(model, x[k], y[k]), strict=True):
            torch.testing.assert_close(ours[k], ref, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("engine_cls", [StackedMLP, VmapEngine])
def test_engine_logits_equal_each_models_forward(engine_cls):
    models = _models(4)
    x = torch.randn(9, 1, 4, 4)
    logits = engine_cls(copy.deepcopy(models), CPU).logits(x)
    assert logits.shape == (4, 9, 3)
    with torch.no_grad():
        for k, model in enumerate(models):
            torch.testing.assert_close(logits[k], model(x), atol=1e-6, rtol=1e-5)


def test_relu_gradient_is_zero_where_the_unit_is_off():
    """A hidden unit that is off for every sample gets exactly zero gradient, as in autograd."""
    (model,) = _models(1, hidden=(4,))
    with torch.no_grad():
        model.body[1].bias[0] = -1e3  # unit 0 never fires
    x, y = torch.randn(1, 5, 1, 4, 4), torch.randint(0, 3, (1, 5))
    grads = StackedMLP([model], CPU).gradients(x, y)
    assert torch.all(grads[0][0, 0] == 0) and grads[1][0, 0] == 0
    assert torch.all(grads[2][0, :, 0] == 0)  # the head sees a constant zero input from it


def test_perceptron_detection():
    example = torch.randn(1, 1, 8, 8)
    mlp = build("mlp", (1, 8, 8), 10)
    assert len(perceptron_layers(mlp)) == 3
    assert choose_engine(mlp, example) == "stacked_mlp"
    assert choose_engine(mlp, example, fast=False) == "vmap"
    assert perceptron_layers(build("smallcnn", (1, 28, 28), 10)) is None
    assert choose_engine(build("smallcnn", (1, 28, 28), 10), torch.randn(1, 1, 28, 28)) == "vmap"
    assert perceptron_layers(nn.Sequential(nn.Flatten(), nn.Linear(4, 3, bias=False))) is None
    assert perceptron_layers(nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))) is None
    assert (
        perceptron_layers(nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU())) is None
    )  # ends in a ReLU


def test_a_model_whose_forward_differs_from_its_module_order_is_not_taken():
    class Reordered(nn.Module):  # registers (Linear 4->4, ReLU, Linear 4->4) but runs them backwards
        def __init__(self):
            super().__init__()
            self.first, self.act, self.last = nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4)

        def forward(self, x):
            return self.first(self.act(self.last(x.flatten(1))))

    torch.manual_seed(0)
    model = Reordered()
    assert perceptron_layers(model) is not None  # the module order alone looks like a perceptron
    assert choose_engine(model, torch.randn(3, 1, 2, 2)) == "vmap"  # the forward check refuses it


def test_a_model_that_does_not_run_as_listed_is_not_taken():
    chained_wrong = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(5, 2))  # 3 != 5
    assert perceptron_layers(chained_wrong) is not None
    assert not StackedMLP.fits(chained_wrong, torch.randn(1, 1, 2, 2))
    no_flatten = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))  # wants flat input
    assert choose_engine(no_flatten, torch.randn(1, 1, 2, 2)) == "vmap"


def test_per_model_bytes_counts_parameters_state_and_activations():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    params = 4 * 3 + 3 + 3 * 2 + 2  # 23
    outputs = 4 + 3 + 3 + 2  # flatten, linear, relu, linear: per sample
    got = bank.per_model_bytes(model, torch.randn(5, 1, 2, 2), batch_size=10, act_bytes=4)
    assert got == 3 * 4 * params + 10 * (2 * 4 * outputs + 4 * 4)  # + the fp32 input batch
    assert not model._forward_hooks and not model[1]._forward_hooks  # hooks removed


def test_auto_group_size_fills_the_cache_on_cpu(monkeypatch):
    monkeypatch.setattr(bank, "last_level_cache_bytes", lambda: 32 * 2**20)
    assert bank.auto_group_size(256, 2**20, CPU)[0] == 16  # half the cache, 1 MiB a model
    assert bank.auto_group_size(8, 2**20, CPU)[0] == 8  # never more than the bank
    group, note = bank.auto_group_size(256, 2**30, CPU)
    assert group == 1 and "32 MiB" in note  # a model bigger than the cache trains alone


def test_last_level_cache_reads_sysfs_sizes(tmp_path, monkeypatch):
    for i, size in enumerate(["48K", "1024K", "32768K", "junk"]):
        (tmp_path / f"index{i}").mkdir()
        (tmp_path / f"index{i}" / "size").write_text(size + "\n")
    real = bank.Path
    monkeypatch.setattr(bank, "Path", lambda p: tmp_path if "cache" in str(p) else real(p))
    assert bank.last_level_cache_bytes() == 32 * 2**20
    monkeypatch.setattr(bank, "Path", lambda p: tmp_path / "nowhere")
    assert bank.last_level_cache_bytes(default=7) == 7


def test_bank_reports_engine_and_how_it_sized_its_groups():
    from tinydata import separable

    from mudiff.config import BankConfig

    data = separable(n_train=30, n_test=10, seed=0).to(CPU)
    auto = bank.train_bank(data, "mlp", BankConfig(models=4, epochs=1, batch_size=8), seed=0)
    assert auto.engine == "stacked_mlp" and auto.group_note.startswith("auto: ")
    fixed = bank.train_bank(
        data, "mlp", BankConfig(models=4, epochs=1, batch_size=8, group_size=3), seed=0, fast=False
    )
    assert fixed.engine == "vmap" and fixed.group_size == 3 and fixed.group_note == "config: group_size 3"
    np.testing.assert_allclose(auto.phi_train, fixed.phi_train, atol=1e-4)


def test_auto_group_size_fills_free_gpu_memory(monkeypatch):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (10 * 2**30, 80 * 2**30))
    group, note = bank.auto_group_size(256, 2**20, torch.device("cuda"))
    assert group == 256  # 7 GiB of room, 1 MiB a model
    group, note = bank.auto_group_size(256, 100 * 2**20, torch.device("cuda"))
    assert group == int(0.7 * 10 * 2**30) // (100 * 2**20) == 71 and "10.0 GiB free GPU memory" in note


def test_a_group_that_runs_out_of_memory_is_halved_and_gives_the_same_bank(monkeypatch):
    from tinydata import separable

    from mudiff.config import BankConfig

    data = separable(n_train=30, n_test=10, seed=0).to(CPU)
    cfg = BankConfig(models=6, epochs=2, batch_size=8, group_size=6)
    whole = bank.train_bank(data, "mlp", cfg, seed=0)
    real, calls = bank._train_group, []

    def fails_above_two(model_name, data, x_train, mask, *args):
        calls.append(len(mask))
        if len(mask) > 2:
            raise torch.OutOfMemoryError("injected: group too big")
        return real(model_name, data, x_train, mask, *args)

    monkeypatch.setattr(bank, "_train_group", fails_above_two)
    halved = bank.train_bank(data, "mlp", cfg, seed=0)
    assert calls == [6, 3, 1, 1, 1, 1, 1, 1]  # 6 fails, 3 fails, then one model at a time
    assert (
        halved.group_size == 1 and "halved to 3" in halved.group_note and "halved to 1" in halved.group_note
    )
    np.testing.assert_array_equal(halved.mask, whole.mask)
    np.testing.assert_allclose(halved.phi_train, whole.phi_train, atol=1e-4)


def test_vmap_engine_steps_the_registry_resnet_with_each_models_own_batchnorm_statistics():
    """ResNet-18 (every BatchNorm of it, downsample branches included) at 8x8: one engine step gives each
    model its own autograd gradient (train mode) and its own running statistics and batch count, as the
    model run alone; scoring uses the running statistics (eval mode) and updates nothing."""
    torch.set_num_threads(1)
    models = [build("resnet18", (1, 8, 8), 2, seed=k).train() for k in range(2)]
    engine = VmapEngine(copy.deepcopy(models), CPU)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(2, 8, 1, 8, 8, generator=gen), torch.randint(0, 2, (2, 8), generator=gen)
    grads = engine.gradients(x, y)
    for k, model in enumerate(models):
        for ours, ref in zip(grads, _autograd_grads(model, x[k], y[k]), strict=True):
            torch.testing.assert_close(ours[k], ref, atol=1e-5, rtol=1e-3)  # BatchNorm over 8 values at 1x1
        state, theirs = engine.state_dict(k), model.state_dict()
        assert state.keys() == theirs.keys()
        for name, ref in theirs.items():
            torch.testing.assert_close(state[name], ref, atol=1e-6, rtol=1e-5, msg=name)
        assert state["body.bn1.num_batches_tracked"] == 1
    before = [b.clone() for b in engine.buffers]
    logits = engine.logits(x[0])
    assert all(torch.equal(a, b) for a, b in zip(before, engine.buffers))  # eval mode: nothing updated
    with torch.no_grad():
        for k, model in enumerate(models):
            torch.testing.assert_close(logits[k], model.eval()(x[0]), atol=1e-5, rtol=1e-4)
