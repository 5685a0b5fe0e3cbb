"""Tiny synthetic data shared by the unit tests (not a test module itself)."""

from __future__ import annotations

import numpy as np
import torch

from mudiff.data import Prepared


def separable(n_train: int = 40, n_test: int = 16, seed: int = 0, flip: int = 0) -> Prepared:
    """Two classes of 1x8x8 uint8 images: noise 0..4, class 1 adds 10 to the top four rows.

    Labels alternate 0, 1, 0, 1, ...; the first `flip` training labels are flipped (samples a
    model can only fit by memorising them).
    """
    rng = np.random.default_rng(seed)

    def make(n):
        y = (np.arange(n) % 2).astype(np.int64)
        x = rng.integers(0, 5, size=(n, 1, 8, 8))
        x[y == 1, :, :4, :] += 10
        return x.astype(np.uint8), y

    x_tr, y_tr = make(n_train)
    x_te, y_te = make(n_test)
    y_tr[:flip] = 1 - y_tr[:flip]
    xf = x_tr.astype(np.float64) / 16.0
    return Prepared(
        x_train=x_tr,
        y_train=y_tr,
        id_train=np.arange(n_train, dtype=np.int64),
        x_test=x_te,
        y_test=y_te,
        id_test=np.arange(n_test, dtype=np.int64),
        num_classes=2,
        scale=16.0,
        mean=np.array([xf.mean()]),
        std=np.array([xf.std()]),
    )


def cpu() -> torch.device:
    # One thread: these models are tiny, and threads only contend on a busy 2-core machine.
    torch.set_num_threads(1)
    return torch.device("cpu")
