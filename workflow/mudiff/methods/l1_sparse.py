"""l1-sparse: finetune on the retain set with an l1 penalty whose weight decays linearly to 0."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mudiff.methods.base import SGDParams, UnlearnTask
from mudiff.options import option
from mudiff.training import fit


@dataclass
class Params(SGDParams):
    """CE on R + gamma_t * ||theta||_1, gamma_t from gamma to 0 linearly over the steps (SPEC: gamma 5e-4, lr 0.01, 10 epochs)."""

    gamma: float = option(5e-4, "Initial l1 weight; decays linearly to 0 over training.", minimum=0)


def unlearn(model: nn.Module, task: UnlearnTask, params: Params) -> nn.Module:
    total = params.epochs * math.ceil(len(task.retain) / params.batch_size)
    step = [0]

    def objective(net, x, y):
        logits = net(x)
        gamma = params.gamma * (1 - step[0] / total)
        step[0] += 1
        l1 = torch.stack([p.abs().sum() for p in net.parameters()]).sum()
        return F.cross_entropy(logits.float(), y) + gamma * l1, logits

    return fit(
        model,
        task.data,
        task.retain,
        params.recipe(),
        task.seed,
        objective=objective,
        on_epoch_end=task.on_epoch_end,
        desc="l1_sparse",
    )
