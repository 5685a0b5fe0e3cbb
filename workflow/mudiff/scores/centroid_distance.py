"""Distance of each sample's penultimate embedding to the centroid of all train embeddings."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from mudiff.scores.inputs import Inputs


def centroid_distance(embeddings: np.ndarray) -> np.ndarray:
    z = embeddings.astype(np.float64)
    return np.linalg.norm(z - z.mean(0), axis=1)


def compute(inputs: Inputs, params: None = None) -> np.ndarray:
    return centroid_distance(inputs.embeddings)
