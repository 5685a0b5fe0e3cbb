"""Memorization (Feldman & Zhang) from the bank: accuracy of models that trained on i minus those that did not."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from mudiff.scores.inputs import Inputs


def memorization(mask: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """mem_i = mean_k[correct | i in k] - mean_k[correct | i not in k]; NaN where one side is empty.

    mask, correct: (K, N) booleans (model k trained on i; model k classifies i correctly).
    """
    mask = mask.astype(bool)
    c = correct.astype(np.float64)
    n_in, n_out = mask.sum(0), (~mask).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc_in = np.where(n_in > 0, (c * mask).sum(0) / n_in, np.nan)
        acc_out = np.where(n_out > 0, (c * ~mask).sum(0) / n_out, np.nan)
    return acc_in - acc_out


def compute(inputs: Inputs, params: None = None) -> np.ndarray:
    return memorization(inputs.bank["mask"], inputs.bank["correct_train"])
