"""Per-sample scores: one module each, one table keyed by sample id.

`REGISTRY` is the one list of scores. Each entry gives SPEC's direction (+1 when a high value
means hard to unlearn, -1 when it means easy) and what the score needs: the target's training
dynamics, the target model (and its checkpoints / the test set), or the model bank. Forget-set
levels use the direction, so "high" is always the hardest; the pipeline uses `needs` so that
scores needing only the target never wait for the bank. This package stays torch-free (the
config imports it); the score modules that need torch import it themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Score:
    name: str
    direction: int  # +1: high = hard; -1: high = easy
    needs: Literal["dynamics", "target", "bank"]


REGISTRY: dict[str, Score] = {
    s.name: s
    for s in (
        Score("memorization", +1, "bank"),
        Score("confidence", -1, "dynamics"),
        Score("max_conf", -1, "dynamics"),
        Score("entropy", -1, "dynamics"),
        Score("bi_acc", -1, "dynamics"),
        Score("forgetting_events", +1, "dynamics"),
        Score("holdout_kl", +1, "target"),
        Score("curvature", +1, "target"),
        Score("centroid_distance", +1, "target"),  # far from the centroid = atypical
        Score("privacy_risk", +1, "bank"),
        Score("margin", -1, "target"),  # low margin = near the boundary = hard
        Score("grad_norm", +1, "target"),
        Score("knn_disagreement", +1, "target"),
    )
}
NAMES = tuple(REGISTRY)
HARDNESS = {name: s.direction for name, s in REGISTRY.items()}
FROM_DYNAMICS = tuple(n for n, s in REGISTRY.items() if s.needs == "dynamics")
FROM_TARGET = tuple(n for n, s in REGISTRY.items() if s.needs == "target")
FROM_BANK = tuple(n for n, s in REGISTRY.items() if s.needs == "bank")


def hardness(name: str, values):
    """Values oriented so that larger is harder."""
    if name not in HARDNESS:
        raise ValueError(f"unknown score {name!r}; known: {sorted(HARDNESS)}")
    return HARDNESS[name] * values
