"""Distance of each sample's penultimate embedding to the centroid of all train embeddings."""

from __future__ import annotations

import numpy as np


def centroid_distance(embeddings: np.ndarray) -> np.ndarray:
    z = embeddings.astype(np.float64)
    return np.linalg.norm(z - z.mean(0), axis=1)


def entanglement_score(embeddings: np.ndarray, forget: np.ndarray) -> float:
    """SPEC's entanglement score of a forget set (boolean mask over rows) against its retain set.

    ES = [mean_R ||z - mu_R||^2 + mean_F ||z - mu_F||^2] / [(||mu_R - mu||^2 + ||mu_F - mu||^2) / 2],
    mu = (mu_R + mu_F) / 2. Higher = more entangled.
    """
    z = embeddings.astype(np.float64)
    forget = np.asarray(forget, dtype=bool)
    zr, zf = z[~forget], z[forget]
    if len(zr) == 0 or len(zf) == 0:
        raise ValueError("entanglement score needs a non-empty forget set and a non-empty retain set")
    mu_r, mu_f = zr.mean(0), zf.mean(0)
    mu = (mu_r + mu_f) / 2
    within = ((zr - mu_r) ** 2).sum(1).mean() + ((zf - mu_f) ** 2).sum(1).mean()
    between = 0.5 * (((mu_r - mu) ** 2).sum() + ((mu_f - mu) ** 2).sum())
    return float(within / between)
