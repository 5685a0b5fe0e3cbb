"""Holdout KL (SPEC): fine-tune a copy of the target on held-out data (the test set), then the
symmetric KL between the target's and the fine-tuned model's predictions on each train sample
(high = hard: the prediction leans on the training set rather than on the distribution).

Recipe (SPEC): SGD at lr 0.1 for at most 30 epochs, stopping after 4 epochs without a gain in
the training loss (the mean loss of an epoch over the held-out set).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from mudiff import training
from mudiff.options import SGDSettings, option

if TYPE_CHECKING:
    from mudiff.scores.inputs import Inputs


@dataclass
class Params(SGDSettings):
    """The fine-tuning on held-out data (SPEC: SGD at lr 0.1, at most 30 epochs, patience 4)."""

    lr: float = option(
        0.1, "Learning rate of the fine-tuning on held-out data (SPEC: 0.1).", exclusiveMinimum=0
    )
    max_epochs: int = option(30, "At most this many epochs (SPEC: 30).", minimum=1)
    patience: int = option(
        4, "Stop after this many epochs without a training-loss gain (SPEC: 4).", minimum=1
    )


def symmetric_kl(logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    """KL(p_a || p_b) + KL(p_b || p_a) per row."""
    la, lb = logits_a.float().log_softmax(1), logits_b.float().log_softmax(1)
    return ((la.exp() - lb.exp()) * (la - lb)).sum(1)


def finetune_on_holdout(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    lr: float = 0.1,
    max_epochs: int = 30,
    patience: int = 4,
    batch_size: int = 64,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    seed: int = 0,
) -> tuple[nn.Module, int]:
    """A fine-tuned copy of `model` on (x, y) (normalised inputs) and the epochs it ran."""
    tuned = copy.deepcopy(model).train()
    opt = training.SGD(tuned.parameters(), momentum=momentum, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    best, stale, epoch = float("inf"), 0, 0
    for epoch in range(1, max_epochs + 1):
        order = torch.randperm(len(x), generator=gen).to(x.device)
        total = torch.zeros(
            (), dtype=torch.float64, device=x.device
        )  # summed on the device: one sync per epoch
        for i in range(0, len(x), batch_size):
            idx = order[i : i + batch_size]
            loss = F.cross_entropy(tuned(x[idx]).float(), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step(lr)
            total += loss.detach().double() * len(idx)
        mean = total.item() / len(x)
        if mean < best:
            best, stale = mean, 0
        else:
            stale += 1
            if stale >= patience:
                break
    return tuned.eval(), epoch


def compute(inputs: Inputs, params: Params) -> torch.Tensor:
    """Fine-tunes a copy of the target on the test set (seeded by the job's seed), records its epochs."""
    x_test, y_test = inputs.test_set
    tuned, epochs = finetune_on_holdout(
        inputs.target,
        x_test,
        y_test,
        params.lr,
        params.max_epochs,
        params.patience,
        params.batch_size,
        params.momentum,
        params.weight_decay,
        seed=inputs.seed,
    )
    inputs.log_metrics({"holdout_kl.epochs": epochs})
    return symmetric_kl(
        training.predict(inputs.target, inputs.data, "train"), training.predict(tuned, inputs.data, "train")
    )
