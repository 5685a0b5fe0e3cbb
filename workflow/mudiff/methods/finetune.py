"""Finetune: keep training the target with cross-entropy on the retain set only."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from mudiff.methods.base import SGDParams, UnlearnTask
from mudiff.training import fit


@dataclass
class Params(SGDParams):
    """Cross-entropy on R (SPEC default: lr 0.01, 10 epochs)."""


def unlearn(model: nn.Module, task: UnlearnTask, params: Params) -> nn.Module:
    return fit(
        model,
        task.data,
        task.retain,
        params.recipe(),
        task.seed,
        on_epoch_end=task.on_epoch_end,
        desc="finetune",
    )
