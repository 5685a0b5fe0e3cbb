"""kNN label disagreement: the share of a sample's k nearest train embeddings (itself excluded)
whose label differs from its own (high = atypical)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from mudiff.options import option

if TYPE_CHECKING:
    from mudiff.scores.inputs import Inputs


@dataclass
class Params:
    """The neighbourhood of each sample's embedding (SPEC: k = 10)."""

    k: int = option(10, "k of knn_disagreement (SPEC: 10).", minimum=1)


def knn_disagreement(
    embeddings: np.ndarray,
    labels: np.ndarray,
    k: int = 10,
    batch_size: int = 2048,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    z = torch.as_tensor(np.asarray(embeddings), dtype=torch.float32, device=device)
    y = torch.as_tensor(np.asarray(labels), device=device)
    n = len(z)
    if not 1 <= k < n:
        raise ValueError(f"knn_disagreement needs 1 <= k < N; got k={k}, N={n}")
    out = []
    for i in range(0, n, batch_size):
        d = torch.cdist(z[i : i + batch_size], z)
        rows = torch.arange(i, min(i + batch_size, n), device=device)
        d[rows - i, rows] = float("inf")  # a sample is not its own neighbour
        nn_idx = d.topk(k, dim=1, largest=False).indices
        out.append((y[nn_idx] != y[rows, None]).float().mean(1))
    return torch.cat(out).cpu().numpy().astype(np.float64)


def compute(inputs: Inputs, params: Params) -> np.ndarray:
    return knn_disagreement(inputs.embeddings, inputs.labels, params.k, device=inputs.device)
