"""Per-sample scores: one module each, one table keyed by sample id; `REGISTRY` is the one list.

A score is one module plus one line of `REGISTRY`: the module defines `compute(inputs, params)`,
which takes the stage's `mudiff.scores.inputs.Inputs` (asking it for what the score reads) and
returns one value per training sample in training-position order, and `Params` (a dataclass of its
hyperparameters, made with `mudiff.options`) when it has any; a job builds it from the config block
`scores.<name>`. The line gives the module (`pkg.mod`, or `pkg.mod:attr` for one of several scores
a module holds, as the training-dynamics ones), SPEC's direction (+1 when a high value means hard to
unlearn, -1 when it means easy) and what the score reads (`NEEDS`). Forget-set levels use the
direction, so "high" is always the hardest; the pipeline uses `needs` so that the scores reading only
the target never wait for the bank (`FROM_BANK` run in the stage `scores_bank`, the rest in
`scores_target`). This package stays torch-free (the config and the Snakefile import it): the score
modules, which need torch, are imported by name when a job runs them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

# What a score may read, as `mudiff.scores.inputs.Inputs` members of the same names: the target's
# training dynamics, the target model, its train embeddings, its checkpoints, the held-out test set,
# the model bank.
NEEDS = ("dynamics", "target", "embeddings", "checkpoints", "test_set", "bank")


@dataclass(frozen=True)
class Score:
    name: str
    module: str  # `pkg.mod` or `pkg.mod:attr`: what holds `compute` (and `Params`)
    direction: int  # +1: high = hard; -1: high = easy
    needs: tuple[str, ...]  # what it reads, from NEEDS

    def __post_init__(self):
        unknown = sorted(set(self.needs) - set(NEEDS))
        if not self.needs or unknown:
            raise ValueError(f"score {self.name!r}: needs {list(self.needs)}; each one of {list(NEEDS)}")


REGISTRY: dict[str, Score] = {
    s.name: s
    for s in (
        Score("memorization", "mudiff.scores.memorization", +1, ("bank",)),
        Score("confidence", "mudiff.scores.dynamics:CONFIDENCE", -1, ("dynamics",)),
        Score("max_conf", "mudiff.scores.dynamics:MAX_CONF", -1, ("dynamics",)),
        Score("entropy", "mudiff.scores.dynamics:ENTROPY", -1, ("dynamics",)),
        Score("bi_acc", "mudiff.scores.dynamics:BI_ACC", -1, ("dynamics",)),
        Score("forgetting_events", "mudiff.scores.dynamics:FORGETTING_EVENTS", +1, ("dynamics",)),
        Score("holdout_kl", "mudiff.scores.holdout_kl", +1, ("target", "test_set")),
        Score("curvature", "mudiff.scores.curvature", +1, ("checkpoints",)),
        # far from the centroid = atypical
        Score("centroid_distance", "mudiff.scores.centroid_distance", +1, ("embeddings",)),
        Score("privacy_risk", "mudiff.scores.privacy_risk", +1, ("bank", "target")),
        Score("margin", "mudiff.scores.margin", -1, ("target",)),  # low margin = near the boundary = hard
        Score("grad_norm", "mudiff.scores.grad_norm", +1, ("target",)),
        Score("knn_disagreement", "mudiff.scores.knn_disagreement", +1, ("embeddings",)),
    )
}
NAMES = tuple(REGISTRY)
HARDNESS = {name: s.direction for name, s in REGISTRY.items()}
# Which stage computes a score: the bank's (it waits for the bank) or the target's.
FROM_BANK = tuple(n for n, s in REGISTRY.items() if "bank" in s.needs)
# Training-dynamics scores: no pass of their own over any model (their cost is reading a table).
FROM_DYNAMICS = tuple(n for n, s in REGISTRY.items() if s.needs == ("dynamics",))
FROM_TARGET = tuple(n for n in NAMES if n not in FROM_BANK + FROM_DYNAMICS)


def hardness(name: str, values):
    """Values oriented so that larger is harder."""
    if name not in HARDNESS:
        raise ValueError(f"unknown score {name!r}; known: {sorted(HARDNESS)}")
    return HARDNESS[name] * values


def get(name: str) -> Any:
    """The score called `name`: what its entry names, with `compute(inputs, params)` (and `Params`)."""
    if name not in REGISTRY:
        raise ValueError(f"unknown score {name!r}; known: {sorted(REGISTRY)}")
    module, _, attr = REGISTRY[name].module.partition(":")
    found = importlib.import_module(module)
    return getattr(found, attr) if attr else found


def params() -> dict[str, type]:
    """Score name -> its `Params` class, for the scores that have hyperparameters (the config's
    `scores.<name>` blocks)."""
    out = {}
    for name in NAMES:
        cls = getattr(get(name), "Params", None)
        if cls is not None:
            out[name] = cls
    return out


def params_of(name: str, scores: dict) -> Any:
    """The score's `Params` built from its block `scores[name]` of a job's scores section (its
    defaults where the block is absent); None for a score without hyperparameters."""
    from mudiff.options import build

    cls = getattr(get(name), "Params", None)
    return None if cls is None else build(cls, scores.get(name, {}))


def modules(names) -> dict[str, str]:
    """Score name -> its registry entry, for the scores `names` (a job that runs them depends on
    those modules: `mudiff.sources`)."""
    return {name: REGISTRY[name].module for name in names}
