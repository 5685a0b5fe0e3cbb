"""Input-gradient norm of the target model: ||grad_x log p_y(x)|| (high = hard).

Gradients are taken with respect to the model's input (the normalised image), in eval mode:
then every sample's loss depends on its own input only, so the gradient of the batch's summed
loss holds each sample's own input gradient, one backward pass per batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import torch
import torch.nn.functional as F
from torch import nn

from mudiff.options import option

if TYPE_CHECKING:
    from mudiff.scores.inputs import Inputs

# A per-sample loss: (inputs, labels) -> (B,) losses, each depending on its own input only.
SampleLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def cross_entropy_loss(model: nn.Module) -> SampleLoss:
    """The per-sample cross-entropy -log p_y of a model in eval mode (no BatchNorm batch statistics)."""
    model.eval()

    def loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model(x).float(), y, reduction="none")

    return loss


def input_gradients(loss: SampleLoss, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample gradients of `loss` with respect to each sample's input."""
    with torch.enable_grad():
        x = x.detach().float().requires_grad_(True)
        (grad,) = torch.autograd.grad(loss(x, y).sum(), x)
    return grad


def grad_norm(loss: SampleLoss, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """||grad_x loss|| per sample; with the cross-entropy loss this is ||grad_x log p_y(x)||."""
    out = [
        input_gradients(loss, x[i : i + batch_size], y[i : i + batch_size]).flatten(1).norm(dim=1)
        for i in range(0, len(x), batch_size)
    ]
    return torch.cat(out) if out else x.new_empty(0)


@dataclass
class Params:
    """The input-gradient pass, in batches of samples."""

    batch_size: int = option(1024, "Samples per gradient batch.", minimum=1)


def compute(inputs: Inputs, params: Params) -> torch.Tensor:
    return grad_norm(cross_entropy_loss(inputs.target), inputs.x_train, inputs.y_train, params.batch_size)
