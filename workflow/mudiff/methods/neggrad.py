"""NegGrad: gradient ascent on the forget set (maximise its cross-entropy)."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import nn

from mudiff.methods.base import SGDParams, UnlearnTask
from mudiff.options import option
from mudiff.training import fit

# One epoch is one pass over F, so a meta-algorithm that splits F keeps every step's epochs.
EPOCH_OVER = "forget"


@dataclass
class Params(SGDParams):
    """-CE on F, one epoch = one pass over F (SPEC: lr 1e-4, 5 epochs)."""

    lr: float = option(1e-4, "Learning rate (constant).", exclusiveMinimum=0)
    epochs: int = option(5, "Epochs (passes over F).", minimum=1)


def ascent(net, x, y):
    logits = net(x)
    return -F.cross_entropy(logits.float(), y), logits


def unlearn(model: nn.Module, task: UnlearnTask, params: Params) -> nn.Module:
    return fit(
        model,
        task.data,
        task.forget,
        params.recipe(),
        task.seed,
        objective=ascent,
        on_epoch_end=task.on_epoch_end,
        desc="neggrad",
    )
