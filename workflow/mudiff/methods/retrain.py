"""Retrain: the gold standard. A fresh model trained on the retain set with the target's recipe."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from mudiff.methods.base import UnlearnTask
from mudiff.models import build
from mudiff.training import fit


@dataclass
class Params:
    """Retrain from scratch on R with the target's recipe (the oracle; no hyperparameters of its own)."""


def unlearn(model: nn.Module, task: UnlearnTask, params: Params) -> nn.Module:
    fresh = build(task.model_name, task.data.shape, task.data.num_classes, seed=task.seed + 1)
    return fit(
        fresh,
        task.data,
        task.retain,
        task.target_recipe,
        task.seed,
        on_epoch_end=task.on_epoch_end,
        desc="retrain",
    )
