"""`fit`: the training loop of the target, retrain and every unlearning method.

Data stays on the device as uint8; a batch is gathered by position, augmented as a tensor and
normalised there.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from mudiff.data import DeviceData
from mudiff.device import autocast, memory_format
from mudiff.training.augmentation import augment
from mudiff.training.dynamics import Dynamics
from mudiff.training.optim import Recipe, lr_lambda, sgd

Objective = Callable[[nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def cross_entropy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The default objective: (mean cross-entropy, logits)."""
    logits = model(x)
    return F.cross_entropy(logits.float(), y), logits


def fit(
    model: nn.Module,
    data: DeviceData,
    positions: torch.Tensor,
    recipe: Recipe,
    seed: int,
    objective: Objective = cross_entropy,
    dynamics: Dynamics | None = None,
    on_epoch_end: Callable[[nn.Module, int], None] | None = None,
    desc: str = "train",
) -> nn.Module:
    """SGD over the training samples at `positions` (one epoch = one pass over them).

    `objective(model, x, y)` returns (loss, logits of x); methods that also look at other
    samples (the forget set) close over them. Deterministic for a seed on CPU.
    """
    device = data.device
    model.to(device=device, memory_format=memory_format(device)).train()
    gen = torch.Generator().manual_seed(seed)
    n = len(positions)
    steps_per_epoch = math.ceil(n / recipe.batch_size)
    opt = sgd(model.parameters(), recipe)
    lr_at, step = lr_lambda(recipe, recipe.epochs * steps_per_epoch), 0
    fmt = memory_format(device)
    for epoch in tqdm(range(recipe.epochs), desc=desc, unit="epoch", mininterval=2):
        order = positions[torch.randperm(n, generator=gen).to(positions.device)]
        for i in range(0, n, recipe.batch_size):
            pos = order[i : i + recipe.batch_size]
            x = data.x_train[pos]
            if recipe.augment:
                x = augment(x, gen)
            x = data.normalize(x).contiguous(memory_format=fmt)
            y = data.y_train[pos]
            with autocast(device):
                loss, logits = objective(model, x, y)
            opt.zero_grad()
            loss.backward()
            opt.step(recipe.lr * lr_at(step))
            step += 1
            if dynamics is not None:
                dynamics.record(epoch, pos, logits, y)
        if on_epoch_end is not None:
            on_epoch_end(model, epoch + 1)
    return model
