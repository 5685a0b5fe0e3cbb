"""Input-loss curvature (SPEC): ||grad_x l(x + h s) - grad_x l(x)||, s = sign(grad_x l) / ||sign(grad_x l)||,
h = 0.01, averaged over the checkpoints the train stage saves (high = hard).

A finite difference of input gradients along the gradient's sign direction: h times the
input Hessian applied to s, to first order. Gradients as in `grad_norm` (eval mode, one
backward pass per batch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from mudiff.options import option
from mudiff.scores.grad_norm import SampleLoss, input_gradients

if TYPE_CHECKING:
    from mudiff.scores.inputs import Inputs


@dataclass
class Params:
    """The finite difference along the gradient's sign (SPEC: h = 0.01), in batches of samples."""

    h: float = option(0.01, "Finite-difference step along sign(grad) (SPEC: 0.01).", exclusiveMinimum=0)
    batch_size: int = option(1024, "Samples per gradient batch.", minimum=1)


def curvature_one(loss: SampleLoss, x: torch.Tensor, y: torch.Tensor, h: float = 0.01) -> torch.Tensor:
    g = input_gradients(loss, x, y)
    s = g.sign()
    norm = s.flatten(1).norm(dim=1).clamp_min(1e-12)  # a zero gradient gives s = 0, curvature 0
    s = s / norm.view(-1, *[1] * (s.dim() - 1))
    g_h = input_gradients(loss, x + h * s, y)
    return (g_h - g).flatten(1).norm(dim=1)


def curvature(
    losses: list[SampleLoss], x: torch.Tensor, y: torch.Tensor, h: float = 0.01, batch_size: int = 1024
) -> torch.Tensor:
    """Mean over `losses` (one per checkpoint) of each sample's curvature."""
    if not losses:
        raise ValueError("curvature needs at least one checkpoint")
    total = torch.zeros(len(x), device=x.device)
    for loss in losses:
        for i in range(0, len(x), batch_size):
            total[i : i + batch_size] += curvature_one(loss, x[i : i + batch_size], y[i : i + batch_size], h)
    return total / len(losses)


def compute(inputs: Inputs, params: Params) -> torch.Tensor:
    return curvature(inputs.checkpoints, inputs.x_train, inputs.y_train, params.h, params.batch_size)
