"""Random labels: train on F with random wrong labels together with R (as in the SalUn code).

One epoch is one shuffled pass over F ∪ R, the forget samples carrying labels drawn once per run,
uniformly among the classes other than the true one (so the method never reinforces F's labels).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from mudiff.data import DeviceData
from mudiff.methods.base import SGDParams, UnlearnTask
from mudiff.options import option
from mudiff.training import fit


@dataclass
class Params(SGDParams):
    """CE on F with random wrong labels plus CE on R, one epoch = one pass over F ∪ R (SPEC: lr 0.01 for small models, 0.1 for CIFAR ResNets; 10 epochs)."""

    lr: float = option(0.01, "Learning rate (constant); SPEC uses 0.1 for CIFAR ResNets.", exclusiveMinimum=0)


def relabelled(data: DeviceData, forget: torch.Tensor, seed: int) -> DeviceData:
    """A view of the data whose forget samples carry a random label other than their own."""
    gen = torch.Generator().manual_seed(seed)
    shift = torch.randint(1, data.num_classes, (len(forget),), generator=gen).to(data.device)
    out = copy.copy(data)  # images shared, labels copied
    out.y_train = data.y_train.clone()
    out.y_train[forget] = (data.y_train[forget] + shift) % data.num_classes
    return out


def unlearn(model: nn.Module, task: UnlearnTask, params: Params, desc: str = "random_label") -> nn.Module:
    data = relabelled(task.data, task.forget, task.seed + 2)
    positions = torch.cat([task.forget, task.retain])
    return fit(model, data, positions, params.recipe(), task.seed, on_epoch_end=task.on_epoch_end, desc=desc)
