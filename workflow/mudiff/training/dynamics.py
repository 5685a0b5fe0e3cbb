"""The per-sample training dynamics (SPEC: p_y, max_k p_k, negative entropy, correctness, loss at
every epoch), read off the training forward pass at no extra cost."""

from __future__ import annotations

import numpy as np
import torch

from mudiff.training.quantities import per_sample


class Dynamics:
    """Per-epoch, per-sample records of the training forward pass (rows: epochs, columns: positions)."""

    FIELDS = ("p_y", "max_p", "neg_entropy", "correct", "loss")

    def __init__(self, epochs: int, n: int, device: torch.device):
        self.values = {f: torch.full((epochs, n), float("nan"), device=device) for f in self.FIELDS}

    def record(self, epoch: int, positions: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        stats = per_sample(logits.detach(), y)
        for f in self.FIELDS:
            self.values[f][epoch, positions] = stats[f].float()

    def numpy(self) -> dict[str, np.ndarray]:
        return {f: v.cpu().numpy() for f, v in self.values.items()}
