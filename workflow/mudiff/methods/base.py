"""What every unlearning method receives, and the hyperparameters most of them share."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

from mudiff.data import DeviceData
from mudiff.options import SGDSettings, option
from mudiff.training import Recipe, predict


@dataclass
class UnlearnTask:
    """The target's data with the forget set F and retain set R as training positions."""

    data: DeviceData
    forget: torch.Tensor
    retain: torch.Tensor
    model_name: str
    target_recipe: Recipe  # how the target was trained (retrain reuses it)
    seed: int
    on_epoch_end: Callable[[nn.Module, int], None]  # records the forget set's state after each epoch
    # The scores table's rows of F, in the order of `forget` (meta-algorithms only; None otherwise).
    forget_scores: pd.DataFrame | None = None
    # What a method wants on record (steps run, fallbacks taken): the stage logs it to record.json and MLflow tags.
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class SGDParams(SGDSettings):
    """SGD hyperparameters of a method, with the number of epochs it runs (constant learning rate)."""

    lr: float = option(0.01, "Learning rate (constant).", exclusiveMinimum=0)
    epochs: int = option(
        10, "Epochs; one epoch is one pass over the retain set unless the method says otherwise.", minimum=1
    )

    def recipe(self) -> Recipe:
        return Recipe.of(self, self.epochs)


class DivergedError(RuntimeError):
    """A method whose model came out with non-finite parameters, buffers or logits."""


def first_non_finite(model: nn.Module) -> tuple[str, str, int, int] | None:
    """(kind, name, non-finite count, size) of the first floating parameter or buffer holding NaN or
    inf, in `named_parameters` then `named_buffers` order; None where every one is finite."""
    for kind, named in (("parameter", model.named_parameters()), ("buffer", model.named_buffers())):
        for name, tensor in named:
            if tensor.is_floating_point() or tensor.is_complex():
                bad = int((~torch.isfinite(tensor.detach())).sum())
                if bad:
                    return kind, name, bad, tensor.numel()
    return None


def check_finite(
    model: nn.Module,
    data: DeviceData,
    method: str,
    params: Any,
    recipe: Recipe | None = None,
    trace: pd.DataFrame | None = None,
) -> None:
    """Raise DivergedError unless every parameter and buffer of `model`, and its logits on every
    train and test sample, are finite. The message names the method, its hyperparameters (`recipe`:
    the target's, which retrain reuses), the first non-finite tensor, the first epoch at which F's
    phi was non-finite (`trace`), and what to lower."""
    where = None
    found = first_non_finite(model)
    if found is not None:
        kind, name, bad, size = found
        where = f"{kind} {name!r} holds {bad} non-finite values (NaN or inf) of {size}"
    else:
        for split in ("train", "test"):
            logits = predict(model, data, split)
            rows = (~torch.isfinite(logits)).any(1)
            if rows.any():
                where = (
                    f"its parameters are finite but its logits are not, on {int(rows.sum())} of {len(rows)} "
                    f"{split} samples (first: position {int(rows.nonzero()[0, 0])})"
                )
                break
    if where is None:
        return
    hyper = asdict(params) if is_dataclass(params) else params
    if recipe is not None:  # retrain: the target's recipe
        hyper = {**hyper, "target recipe": asdict(recipe)}
    epoch = ""
    if trace is not None and len(trace):
        bad_epochs = sorted(
            set(trace.loc[~np.isfinite(trace["phi"].to_numpy(dtype=float)), "epoch"].tolist())
        )
        if bad_epochs:
            epoch = f"; the forget set's phi was first non-finite after epoch {bad_epochs[0]}"
    advice = (
        "lower the target's learning rate (train.lr)"
        if recipe is not None
        else f"lower its learning rate (unlearn.{method}.lr), or its epochs or the strength of its loss terms"
    )
    raise DivergedError(
        f"unlearning method {method!r} diverged: after it ran, the model's {where}{epoch}; "
        f"hyperparameters {hyper}; {advice}"
    )
