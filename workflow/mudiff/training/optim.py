"""SGD: a run's recipe, the optimizer (torch's functional SGD over any tensors) and the learning-rate
schedules."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch.optim.sgd import sgd as _functional_sgd

from mudiff.options import SGDSettings


@dataclass
class Recipe:
    """What one SGD run needs."""

    epochs: int
    batch_size: int
    lr: float
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "constant"  # constant | cosine | onecycle
    augment: bool = False

    @classmethod
    def of(cls, sgd: SGDSettings, epochs: int, schedule: str = "constant", augment: bool = False) -> Recipe:
        """The recipe of a typed config section's SGD hyperparameters (`mudiff.options.SGDSettings`) and its
        length."""
        return cls(epochs=epochs, schedule=schedule, augment=augment, **sgd.sgd())


class SGD:
    """torch.optim.SGD's update (momentum, weight decay; no dampening, no Nesterov) over any list of
    tensors, with the learning rate given per step: torch's own functional `torch.optim.sgd.sgd`
    (foreach kernels), the arithmetic `torch.optim.SGD.step` runs: g += wd * p;
    b = m * b + g (the first b is a copy of g); p -= lr * b.

    Not `torch.optim.SGD` itself because constructing a process's first `torch.optim` optimizer
    imports `torch._dynamo`: ~2 s of the ~7 s an unlearning job takes on 2 CPU cores, paid again by
    every job; the functional form imports nothing more. Like torch, a parameter without a gradient
    at a step is left alone, momentum included. The bank's engines step their stacked tensors with it.
    """

    def __init__(self, params, momentum: float, weight_decay: float):
        self.params = list(params)
        self.momentum, self.weight_decay = momentum, weight_decay
        self.buffers: list[torch.Tensor | None] = [None] * len(self.params)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self, lr: float, grads: list[torch.Tensor | None] | None = None) -> None:
        """One update; `grads` defaults to the parameters' `.grad`."""
        grads = [p.grad for p in self.params] if grads is None else list(grads)
        live = [i for i, g in enumerate(grads) if g is not None]
        if not live:
            return
        buffers = [self.buffers[i] for i in live]  # torch fills in the first step's buffers
        _functional_sgd(
            [self.params[i] for i in live],
            [grads[i] for i in live],
            buffers,
            foreach=True,
            weight_decay=self.weight_decay,
            momentum=self.momentum,
            lr=lr,
            dampening=0.0,
            nesterov=False,
            maximize=False,
        )
        for i, b in zip(live, buffers):
            self.buffers[i] = b


def sgd(params, recipe: Recipe) -> SGD:
    return SGD(params, momentum=recipe.momentum, weight_decay=recipe.weight_decay)


def lr_lambda(recipe: Recipe, total_steps: int) -> Callable[[int], float]:
    """Multiplier of the peak learning rate at a step."""
    total = max(total_steps, 1)
    if recipe.schedule == "cosine":
        return lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total))
    if recipe.schedule == "onecycle":
        warm = max(1, int(0.25 * total))
        return lambda s: s / warm if s < warm else max(0.0, (total - s) / (total - warm))
    return lambda s: 1.0
