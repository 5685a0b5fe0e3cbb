"""Margin of the target model: p_y - max_{k != y} p_k (low = near the decision boundary = hard)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from mudiff.training import predict

if TYPE_CHECKING:
    from mudiff.scores.inputs import Inputs


def margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    p = logits.float().softmax(1)
    p_y = p.gather(1, y[:, None]).squeeze(1)
    others = p.scatter(1, y[:, None], float("-inf"))
    return p_y - others.max(1).values


def compute(inputs: Inputs, params: None = None) -> torch.Tensor:
    return margin(predict(inputs.target, inputs.data, "train"), inputs.y_train)
