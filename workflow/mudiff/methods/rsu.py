"""RSU (risk-ranked sequential unlearning): rank F by privacy risk, unlearn it in k chunks in that order.

Orders: easy_to_hard (least exposed first, the default), hard_to_easy and random (controls).
Risk is the scores table's `score` column (default `privacy_risk`, LiRA; high = exposed). An
ordered RSU given no table or one without that column ranks by the target's per-sample loss
instead (the loss-threshold membership attack: lower loss = more exposed), with a warning in the
job log and the MLflow tag `mudiff.note.rsu_fallback`. The pipeline never does: config validation
refuses an ordered RSU whose score the study does not compute, and its jobs get the scores table;
only a direct call (`unlearn_one` without `forget_scores`) falls back. `order: random` ranks by
nothing: it reads no score, computes no loss, warns of nothing.
Steps, retain sets and budget: `mudiff.methods.sequential`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Literal

import numpy as np
from torch import nn

from mudiff import methods
from mudiff.methods import sequential
from mudiff.methods.base import UnlearnTask
from mudiff.options import option
from mudiff.scores import HARDNESS
from mudiff.training import per_sample, predict

ORDERS = ("easy_to_hard", "hard_to_easy", "random")


@dataclass
class Params:
    """RSU: k chunks of F ranked by privacy_risk; `inner` holds the wrapped method's hyperparameters."""

    order: Literal[ORDERS] = option(
        "easy_to_hard", "Chunk order: by rising risk, falling risk, or random (seeded)."
    )
    chunks: int = option(3, "k, the number of chunks.", minimum=1)
    score: str = option("privacy_risk", "Column of the scores table that ranks F (high = exposed).")
    inner: dict = option(
        {}, "Hyperparameters of the wrapped method (each chunk's epochs: see the budget rule)."
    )


def risk(model: nn.Module, task: UnlearnTask, score: str) -> np.ndarray:
    """Per-sample risk of F (larger = more exposed), from the scores table or the target's loss."""
    table = task.forget_scores
    if table is not None and score in table.columns:
        return HARDNESS.get(score, +1) * table[score].to_numpy(dtype=float)
    message = f"RSU: scores table has no {score!r} column; ranking F by the target's loss instead (lower loss = more exposed)"
    warnings.warn(message, stacklevel=2)
    print(f"warning: {message}", flush=True)
    task.notes["rsu_fallback"] = "target loss"
    loss = per_sample(predict(model, task.data, "train", task.forget), task.data.y_train[task.forget])["loss"]
    return -loss.cpu().numpy()


def random_order(n: int, seed: int) -> np.ndarray:
    """The seeded random order of F's n samples (`order: random`)."""
    return np.random.default_rng(seed).permutation(n)


def ranking(values: np.ndarray, order: str, seed: int) -> np.ndarray:
    """Indices into F in the order RSU unlearns them."""
    if order == "random":
        return random_order(len(values), seed)
    easy_first = np.argsort(values, kind="stable")
    return easy_first if order == "easy_to_hard" else easy_first[::-1].copy()


def bind(meta: str, inner: str) -> SimpleNamespace:
    def unlearn(model: nn.Module, task: UnlearnTask, params: Params) -> nn.Module:
        module = methods.get(inner)
        hyper = module.Params(**params.inner)
        if params.order == "random":  # a control that ranks by nothing: no score read, no fallback
            order = random_order(len(task.forget), task.seed)
        else:
            order = ranking(risk(model, task, params.score), params.order, task.seed)
        chunks = sequential.thirds(order, params.chunks)
        steps = [
            sequential.Step(f"chunk {i + 1}", task.forget[c], module, hyper)
            for i, c in enumerate(chunks)
            if len(c)
        ]
        task.notes["rsu_order"] = params.order
        return sequential.run(model, task, steps)

    return SimpleNamespace(
        Params=Params, unlearn=unlearn, methods_called=lambda hyper: [inner], __name__=f"{__name__}:{meta}"
    )
