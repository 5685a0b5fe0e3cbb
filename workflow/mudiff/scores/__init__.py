"""Per-sample scores: one module each, one table keyed by sample id.

`HARDNESS` gives each score's direction from SPEC: +1 when a high value means hard to unlearn,
-1 when it means easy. Forget-set levels use it, so "high" is always the hardest.
"""

from __future__ import annotations

HARDNESS = {
    "memorization": +1,
    "confidence": -1,
    "max_conf": -1,
    "entropy": -1,
    "bi_acc": -1,
    "forgetting_events": +1,
    "centroid_distance": +1,  # far from the centroid = atypical
}

# Scores read off the target's training dynamics, the bank, or the target's embeddings.
FROM_DYNAMICS = ("confidence", "max_conf", "entropy", "bi_acc", "forgetting_events")
FROM_BANK = ("memorization",)
FROM_EMBEDDINGS = ("centroid_distance",)


def hardness(name: str, values):
    """Values oriented so that larger is harder."""
    if name not in HARDNESS:
        raise ValueError(f"unknown score {name!r}; known: {sorted(HARDNESS)}")
    return HARDNESS[name] * values
