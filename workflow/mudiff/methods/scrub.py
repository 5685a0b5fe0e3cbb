"""SCRUB: a student (the model) moves away from a frozen teacher (the target) on F, stays close on R.

Each epoch: a max-step pass over F raising KL(teacher ‖ student) (only in the first `max_steps`
epochs, as in the SCRUB code), then a min-step pass over R lowering
gamma * CE + beta * KL(teacher ‖ student). KL at temperature T, scaled by T² (SCRUB's DistillKL).
F and R have their own batch sizes, as in the SCRUB code (its forget loader takes 32 to 64
samples a batch, its retain loader 128): `forget_batch_size` for the max pass, `batch_size` for the min pass.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mudiff.methods.base import SGDParams, UnlearnTask
from mudiff.options import option
from mudiff.training import fit


@dataclass
class Params(SGDParams):
    """Max-steps on F, min-steps on R against a frozen teacher (SPEC: 4 max-steps, 5 epochs, lr 5e-3, T = 4; gamma 0.99, beta 0.001 and batch sizes 32 on F, 128 on R from the SCRUB code)."""

    lr: float = option(5e-3, "Learning rate (constant).", exclusiveMinimum=0)
    epochs: int = option(5, "Epochs; each is an optional max pass over F and a min pass over R.", minimum=1)
    batch_size: int = option(
        128, "Mini-batch size of the min pass over R (128 in the SCRUB code).", minimum=1
    )
    forget_batch_size: int = option(
        32,
        "Mini-batch size of the max pass over F (the SCRUB code's forget loader takes 32 to 64).",
        minimum=1,
    )
    max_steps: int = option(4, "Epochs that start with a max-step pass over F (the first ones).", minimum=0)
    temperature: float = option(4.0, "Distillation temperature T.", exclusiveMinimum=0)
    gamma: float = option(0.99, "Weight of CE on R in the min-steps.", minimum=0)
    beta: float = option(0.001, "Weight of KL(teacher ‖ student) on R in the min-steps.", minimum=0)


def kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean KL(teacher ‖ student) at temperature T, times T²."""
    t = temperature
    log_s = F.log_softmax(student_logits.float() / t, 1)
    log_t = F.log_softmax(teacher_logits.float() / t, 1)
    return F.kl_div(log_s, log_t, log_target=True, reduction="batchmean") * t * t


def unlearn(model: nn.Module, task: UnlearnTask, params: Params) -> nn.Module:
    teacher = copy.deepcopy(model).eval().requires_grad_(False)

    def maximise(net, x, y):
        logits = net(x)
        with torch.no_grad():
            target = teacher(x)
        return -kl(logits, target, params.temperature), logits

    def minimise(net, x, y):
        logits = net(x)
        with torch.no_grad():
            target = teacher(x)
        return params.gamma * F.cross_entropy(logits.float(), y) + params.beta * kl(
            logits, target, params.temperature
        ), logits

    one = dataclasses.replace(params.recipe(), epochs=1)  # a pass over R
    one_forget = dataclasses.replace(one, batch_size=params.forget_batch_size)  # a pass over F
    passes = task.notes.setdefault("scrub_passes", [])
    for epoch in range(params.epochs):
        # A fresh optimizer per pass (momentum restarts), as SCRUB alternates two optimisation problems.
        if epoch < params.max_steps:
            fit(
                model,
                task.data,
                task.forget,
                one_forget,
                task.seed + 2 * epoch,
                objective=maximise,
                desc="scrub max",
            )
            passes.append("max")
        fit(
            model,
            task.data,
            task.retain,
            one,
            task.seed + 2 * epoch + 1,
            objective=minimise,
            desc="scrub min",
        )
        passes.append("min")
        task.on_epoch_end(model, epoch + 1)
    return model
