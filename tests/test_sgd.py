"""mudiff.training.SGD: torch.optim.SGD's arithmetic (bit for bit), a fit that matches torch's, and no
torch._dynamo import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from tinydata import cpu, separable
from torch import nn

from mudiff.training import SGD, Recipe, fit, lr_lambda

ROOT = Path(__file__).resolve().parents[1]


def test_sgd_matches_torch_sgd_with_changing_lr():
    gen = torch.Generator().manual_seed(1)
    params = [torch.randn(2, 3, generator=gen), torch.randn(4, generator=gen)]
    ref = [nn.Parameter(p.clone()) for p in params]
    opt = torch.optim.SGD(ref, lr=0.1, momentum=0.9, weight_decay=0.01)
    ours = SGD([p.clone() for p in params], momentum=0.9, weight_decay=0.01)
    for step, lr in enumerate([0.1, 0.05, 0.02]):
        grads = [torch.randn(p.shape, generator=gen) for p in params]
        for group in opt.param_groups:
            group["lr"] = lr
        for p, g in zip(ref, grads):
            p.grad = g.clone()
        opt.step()
        ours.step(lr, [g.clone() for g in grads])
        for a, b in zip(ours.params, ref):
            assert torch.equal(a, b.detach()), f"step {step}"  # torch's own functional SGD: the same bits


def test_sgd_without_momentum_or_decay_is_plain_gradient_descent():
    p = [torch.tensor([1.0, 2.0])]
    opt = SGD(p, momentum=0.0, weight_decay=0.0)
    opt.step(0.2, [torch.tensor([0.5, -1.0])])
    torch.testing.assert_close(p[0], torch.tensor([0.9, 2.2]))
    assert opt.buffers == [None]


def test_a_parameter_without_gradient_is_left_alone_as_torch_does():
    """Gradients present at some steps only: torch skips the parameter, momentum and decay included."""
    gen = torch.Generator().manual_seed(2)
    start = [torch.randn(3, generator=gen), torch.randn(2, generator=gen)]
    ref = [nn.Parameter(p.clone()) for p in start]
    torch_opt = torch.optim.SGD(ref, lr=0.1, momentum=0.9, weight_decay=0.05)
    mine = [p.clone().requires_grad_() for p in start]
    ours = SGD(mine, momentum=0.9, weight_decay=0.05)
    for step in range(4):
        grads = [torch.randn(3, generator=gen), torch.randn(2, generator=gen) if step % 2 else None]
        for p, q, g in zip(ref, mine, grads):
            p.grad = None if g is None else g.clone()
            q.grad = None if g is None else g.clone()
        torch_opt.step()
        ours.step(0.1)
        ours.zero_grad()
        assert all(p.grad is None for p in mine)
        for a, b in zip(mine, ref):
            torch.testing.assert_close(a.detach(), b.detach(), atol=1e-7, rtol=1e-6, msg=f"step {step}")


def test_fit_equals_torch_sgd_with_lambda_lr():
    """`fit` is the loop published code writes with torch.optim.SGD and LambdaLR, step for step."""
    data = separable(n_train=40, n_test=8, seed=0).to(cpu())
    recipe = Recipe(epochs=3, batch_size=16, lr=0.1, schedule="cosine")
    positions = torch.arange(40)
    torch.manual_seed(0)
    ours = fit(nn.Sequential(nn.Flatten(), nn.Linear(64, 2)), data, positions, recipe, seed=5)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 2))
    opt = torch.optim.SGD(
        model.parameters(), lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(recipe, recipe.epochs * 3))
    gen = torch.Generator().manual_seed(5)
    for _ in range(recipe.epochs):
        order = positions[torch.randperm(40, generator=gen)]
        for i in range(0, 40, recipe.batch_size):
            x, y = data.train_batch(order[i : i + recipe.batch_size])
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    for a, b in zip(ours.parameters(), model.parameters()):
        torch.testing.assert_close(a.detach(), b.detach(), atol=1e-6, rtol=1e-5)


def test_training_does_not_import_torch_dynamo():
    """Importing torch._dynamo costs ~2 s per job on 2 CPU cores; a fit must not trigger it."""
    code = (
        "import sys, torch\n"
        "from torch import nn\n"
        "from mudiff.training import Recipe, fit\n"
        "from tinydata import cpu, separable\n"
        "data = separable(n_train=20, n_test=4, seed=0).to(cpu())\n"
        "fit(nn.Sequential(nn.Flatten(), nn.Linear(64, 2)), data, torch.arange(20), Recipe(1, 8, 0.1), seed=0)\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    env_path = f"{ROOT / 'workflow'}:{ROOT / 'tests'}"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"
