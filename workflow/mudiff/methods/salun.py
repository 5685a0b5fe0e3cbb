"""SalUn: random labels, updating only the weights most salient to the forget set.

The saliency mask is computed once, on the target before unlearning: the `share` of all weights
(one global threshold across layers, as in the SalUn code) with the largest |∇ CE(F)| over all of F.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mudiff.methods import random_label
from mudiff.methods.base import UnlearnTask
from mudiff.options import option


@dataclass
class Params(random_label.Params):
    """random_label with gradients outside the saliency mask zeroed (SPEC: mask = top 50% of |grad CE(F)|; otherwise as random_label)."""

    share: float = option(
        0.5, "Share of weights in the saliency mask (largest |grad CE(F)|).", exclusiveMinimum=0, maximum=1
    )


def saliency_mask(
    model: nn.Module, data, forget: torch.Tensor, share: float, batch_size: int = 1024
) -> dict[str, torch.Tensor]:
    """Boolean mask per parameter: exactly round(share * #weights) entries, those with the largest |grad|."""
    model.zero_grad(set_to_none=True)
    was_training = model.training
    model.eval()
    for i in range(0, len(forget), batch_size):
        x, y = data.train_batch(forget[i : i + batch_size])
        # summed, so that batching does not change the gradient of the mean over F
        (F.cross_entropy(model(x).float(), y, reduction="sum") / len(forget)).backward()
    model.train(was_training)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    flat = torch.cat(
        [p.grad.abs().flatten() if p.grad is not None else torch.zeros_like(p).flatten() for _, p in named]
    )
    k = round(share * flat.numel())
    keep = torch.zeros_like(flat, dtype=torch.bool)
    keep[flat.topk(k).indices] = True  # topk, not a threshold: exactly k entries even with ties
    model.zero_grad(set_to_none=True)
    masks, start = {}, 0
    for n, p in named:
        masks[n] = keep[start : start + p.numel()].view_as(p)
        start += p.numel()
    return masks


def unlearn(model: nn.Module, task: UnlearnTask, params: Params) -> nn.Module:
    masks = saliency_mask(model, task.data, task.forget, params.share)
    hooks = [p.register_hook(lambda g, m=masks[n]: g * m) for n, p in model.named_parameters() if n in masks]
    try:
        return random_label.unlearn(model, task, params, desc="salun")
    finally:
        for h in hooks:
            h.remove()
