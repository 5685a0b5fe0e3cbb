"""What every unlearning method receives, and the hyperparameters most of them share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd

import torch
from torch import nn

from mudiff.sections import option
from mudiff.data import DeviceData
from mudiff.training import Recipe


@dataclass
class UnlearnTask:
    """The target's data with the forget set F and retain set R as training positions."""

    data: DeviceData
    forget: torch.Tensor
    retain: torch.Tensor
    model_name: str
    target_recipe: Recipe  # how the target was trained (retrain reuses it)
    seed: int
    on_epoch_end: Callable[[nn.Module, int], None]  # records the forget set's state after each epoch
    # The scores table's rows of F, in the order of `forget` (meta-algorithms only; None otherwise).
    forget_scores: pd.DataFrame | None = None
    # What a method wants on record (steps run, fallbacks taken): the stage logs it to record.json and MLflow tags.
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class SGDParams:
    """SGD hyperparameters (SPEC: momentum 0.9, weight decay 5e-4)."""

    lr: float = option(0.01, "Learning rate (constant).", exclusiveMinimum=0)
    epochs: int = option(10, "Epochs; one epoch is one pass over the retain set unless the method says otherwise.", minimum=1)
    batch_size: int = option(64, "Mini-batch size.", minimum=1)
    momentum: float = option(0.9, "SGD momentum.", minimum=0, maximum=1)
    weight_decay: float = option(5e-4, "SGD weight decay.", minimum=0)

    def recipe(self) -> Recipe:
        return Recipe(self.epochs, self.batch_size, self.lr, self.momentum, self.weight_decay, "constant")
