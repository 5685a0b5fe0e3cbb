"""SPEC's per-sample quantities of a model's logits."""

from __future__ import annotations

import torch


def per_sample(logits: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """SPEC's per-sample quantities from logits: p_y, max_p, neg_entropy, correct, loss and phi.

    phi = log p_y - log(1 - p_y) equals z_y - logsumexp_{k != y} z_k, computed in that stable form.
    """
    logits = logits.float()
    logp = logits.log_softmax(1)
    logp_y = logp.gather(1, y[:, None]).squeeze(1)
    p = logp.exp()
    others = logits.scatter(1, y[:, None], float("-inf"))
    return {
        "p_y": logp_y.exp(),
        "max_p": p.max(1).values,
        "neg_entropy": (p * logp).nan_to_num().sum(1),
        "correct": logits.argmax(1) == y,
        "loss": -logp_y,
        "phi": logits.gather(1, y[:, None]).squeeze(1) - others.logsumexp(1),
    }
