"""RUM (refined unlearning meta-algorithm): refine F into low/mid/high by a score, unlearn in that order.

Variants: `rum_f:<method>` runs one method at every step; `rum` a method per subset (default
none → finetune → salun, the original's best; 'none' skips the subset); `shuffle:<method>` runs
the same sequence on random thirds of F (seeded), separating refinement from sequencing.
Subsets are the easiest, middle and hardest thirds of F by the score (direction-aware through
`mudiff.scores.hardness`, so 'high' is always the hardest). Steps, retain sets and budget:
`mudiff.methods.sequential`.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Literal

import numpy as np
from torch import nn

from mudiff import methods
from mudiff.methods import sequential
from mudiff.methods.base import UnlearnTask
from mudiff.options import option
from mudiff.scores import hardness

LEVELS = ("low", "mid", "high")
STEP_METHODS = ("none",) + methods.INNER


@dataclass
class Params:
    """RUM_F: one method at every step; `inner` holds that method's hyperparameters (its defaults otherwise)."""

    score: str = option("memorization", "Column of the scores table that refines F into low/mid/high.")
    inner: dict = option(
        {}, "Hyperparameters of the method run at every step (each step's epochs: see the budget rule)."
    )


@dataclass
class ShuffleParams:
    """Shuffle: RUM_F's sequence on random thirds of F (seeded by the study seed); `inner` as in RUM_F."""

    inner: dict = option({}, "Hyperparameters of the method run at every step.")


@dataclass
class RumParams:
    """RUM: a method per subset (SPEC default none → finetune → salun); `inner` maps a method to its hyperparameters."""

    score: str = option("memorization", "Column of the scores table that refines F into low/mid/high.")
    steps: dict[Literal[LEVELS], Literal[STEP_METHODS]] = option(
        {"low": "none", "mid": "finetune", "high": "salun"},
        "Method per subset; a level left out or 'none' is skipped.",
    )
    inner: dict = option({}, "Method name -> its hyperparameters, for the methods in `steps`.")


def refine(task: UnlearnTask, score: str) -> dict[str, np.ndarray]:
    """Indices into F of its low, mid and high thirds by `score` (ties broken by position in F)."""
    table = task.forget_scores
    if table is None or score not in table.columns:
        available = [] if table is None else sorted(c for c in table.columns if c not in ("id", "label"))
        raise ValueError(
            f"RUM refines F by score {score!r}, which the scores table lacks; available: {available}"
        )
    values = np.asarray(hardness(score, table[score].to_numpy(dtype=float)))
    order = np.argsort(values, kind="stable")
    return dict(zip(LEVELS, sequential.thirds(order)))


def random_thirds(task: UnlearnTask) -> dict[str, np.ndarray]:
    order = np.random.default_rng(task.seed).permutation(len(task.forget))
    return dict(zip(LEVELS, sequential.thirds(order)))


def plan(meta: str, inner: str | None, task: UnlearnTask, params) -> list[sequential.Step]:
    parts = random_thirds(task) if meta == "shuffle" else refine(task, params.score)
    steps = []
    for level in LEVELS:
        name = params.steps.get(level, "none") if meta == "rum" else inner
        forget = task.forget[parts[level]]
        if name == "none":
            steps.append(sequential.Step(level, forget, None))
            continue
        module = methods.get(name)
        hyper = params.inner.get(name, {}) if meta == "rum" else params.inner
        steps.append(sequential.Step(level, forget, module, module.Params(**hyper)))
    return steps


def bind(meta: str, inner: str | None) -> SimpleNamespace:
    cls = {"rum_f": Params, "shuffle": ShuffleParams, "rum": RumParams}[meta]

    def unlearn(model: nn.Module, task: UnlearnTask, params) -> nn.Module:
        task.notes["refined_by"] = "random thirds" if meta == "shuffle" else params.score
        return sequential.run(model, task, plan(meta, inner, task, params))

    def methods_called(hyper: dict) -> list[str]:
        if inner is not None:
            return [inner]
        steps = hyper.get("steps", RumParams().steps)
        return sorted({m for m in steps.values() if m != "none"})

    return SimpleNamespace(
        Params=cls, unlearn=unlearn, methods_called=methods_called, __name__=f"{__name__}:{meta}"
    )
