"""NegGrad+: descend on the retain set while ascending on the forget set, weighted by alpha."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import nn

from mudiff.methods.base import SGDParams, UnlearnTask
from mudiff.options import option
from mudiff.training import Sampler, fit


@dataclass
class Params(SGDParams):
    """alpha * CE(R batch) - (1 - alpha) * CE(F batch); one epoch = one pass over R (SPEC: alpha 0.99, lr 0.01, 5 epochs)."""

    epochs: int = option(5, "Epochs (passes over R).", minimum=1)
    alpha: float = option(
        0.99, "Weight of the retain loss; 1 - alpha weighs the forget ascent.", minimum=0, maximum=1
    )


def unlearn(model: nn.Module, task: UnlearnTask, params: Params) -> nn.Module:
    forget = Sampler(task.data, task.forget, params.batch_size, seed=task.seed + 1)

    def objective(net, x, y):
        logits = net(x)
        xf, yf = forget.next()
        loss = params.alpha * F.cross_entropy(logits.float(), y) - (1 - params.alpha) * F.cross_entropy(
            net(xf).float(), yf
        )
        return loss, logits

    return fit(
        model,
        task.data,
        task.retain,
        params.recipe(),
        task.seed,
        objective=objective,
        on_epoch_end=task.on_epoch_end,
        desc="neggrad_plus",
    )
