"""Training-dynamics proxies (SPEC): means over epochs of the target's per-sample records.

Inputs are (epochs, N) arrays recorded during target training (`mudiff.training.Dynamics`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

if TYPE_CHECKING:
    from mudiff.scores.inputs import Inputs


def confidence(p_y: np.ndarray) -> np.ndarray:
    """Mean over epochs of the true-class probability (high = easy)."""
    return p_y.mean(0)


def max_conf(max_p: np.ndarray) -> np.ndarray:
    """Mean over epochs of the largest class probability (high = easy)."""
    return max_p.mean(0)


def entropy(neg_entropy: np.ndarray) -> np.ndarray:
    """Mean over epochs of sum_k p_k log p_k, the negative entropy (high = easy)."""
    return neg_entropy.mean(0)


def bi_acc(correct: np.ndarray) -> np.ndarray:
    """Mean over epochs of correctness (high = easy)."""
    return correct.astype(np.float64).mean(0)


def forgetting_events(correct: np.ndarray) -> np.ndarray:
    """Count of correct -> incorrect transitions between consecutive epochs (high = hard).

    A sample never classified correctly at any epoch gets the number of epochs (`correct.shape[0]`),
    as in Toneva et al.'s code: more than any learned sample can reach (at most epochs // 2), so
    never-learned samples rank as the hardest.
    """
    c = correct.astype(bool)
    events = (c[:-1] & ~c[1:]).sum(0).astype(np.float64)
    return np.where(c.any(0), events, float(c.shape[0]))


@dataclass(frozen=True)
class FromDynamics:
    """A registered score that reads one column of the target's training dynamics (`Inputs.dynamics`)."""

    column: str
    function: Callable[[np.ndarray], np.ndarray]

    def compute(self, inputs: Inputs, params: None = None) -> np.ndarray:
        return self.function(inputs.dynamics[self.column])


# The registry's entries (`mudiff.scores.dynamics:<NAME>`): each score and the column it reads.
CONFIDENCE = FromDynamics("p_y", confidence)
MAX_CONF = FromDynamics("max_p", max_conf)
ENTROPY = FromDynamics("neg_entropy", entropy)
BI_ACC = FromDynamics("correct", bi_acc)
FORGETTING_EVENTS = FromDynamics("correct", forgetting_events)
