"""What the scores read: one `Inputs` per job, each member computed on first use and kept, so that a
score asks for what it needs and what several read (the embedding pass) is paid once.

The members named in `mudiff.scores.NEEDS` are what a score may declare it reads: `dynamics`,
`target`, `embeddings`, `checkpoints`, `test_set`, `bank`. A shared pass that every score reading it
pays for (the embedding pass, the bank's training) records its time in `paid`, which `compute_scores`
adds to each such score's own time. Members may also be given outright (`Inputs(..., embeddings=z)`).
"""

from __future__ import annotations

import time
from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import pandas as pd

from mudiff.scores import REGISTRY, get, params_of

if TYPE_CHECKING:
    import torch
    from torch import nn

    from mudiff.data import DeviceData, Prepared
    from mudiff.scores.grad_norm import SampleLoss

DYNAMICS_COLUMNS = ("p_y", "max_p", "neg_entropy", "correct")


def dynamics_arrays(table: pd.DataFrame, ids: np.ndarray) -> dict[str, np.ndarray]:
    """(epochs, N) arrays from the long dynamics table, columns in the order of `ids`."""
    table = table.sort_values(["epoch", "id"])
    epochs = table["epoch"].nunique()
    table_ids = table["id"].to_numpy()[: len(table) // epochs]
    order = np.searchsorted(table_ids, ids)
    return {c: table[c].to_numpy().reshape(epochs, -1)[:, order] for c in DYNAMICS_COLUMNS}


class Inputs:
    """A job's inputs for its scores. `paths` are the job's input files (`arrays`, `model`, `dynamics`,
    `checkpoints`, `bank`, `bank_summary`: those its scores read); `log_metrics` records a score's own
    metrics (holdout_kl's epochs) in the job's run."""

    def __init__(
        self,
        paths: dict[str, str],
        model_name: str,
        device: torch.device | str = "cpu",
        seed: int = 0,
        log_metrics: Callable[[dict], Any] | None = None,
        **given: Any,
    ):
        self.paths, self.model_name, self.device, self.seed = paths, model_name, device, seed
        self.log_metrics = log_metrics or (lambda metrics: None)
        self.paid: dict[str, float] = {}  # a shared pass's seconds, by the need it serves
        unknown = sorted(k for k in given if not isinstance(getattr(type(self), k, None), cached_property))
        if unknown:
            raise TypeError(f"Inputs: {unknown} are not members")
        self.__dict__.update(given)  # a cached_property is then read as given

    def load(self, *members: str) -> None:
        """Computes these members now (so that no score's clock counts them)."""
        for member in members:
            getattr(self, member)

    def seconds(self, name: str, own: float) -> float:
        """A score's compute time: its own plus the shared passes it reads."""
        return own + sum(self.paid[need] for need in REGISTRY[name].needs if need in self.paid)

    # ----------------------------------------------------------------------------- the data

    @cached_property
    def prepared(self) -> Prepared:
        from mudiff.data import load_prepared

        return load_prepared(self.paths["arrays"])

    @cached_property
    def data(self) -> DeviceData:
        return self.prepared.to(self.device)

    @property
    def ids(self) -> np.ndarray:
        return self.prepared.id_train

    @property
    def labels(self) -> np.ndarray:
        """Train labels (numpy)."""
        return self.prepared.y_train

    @cached_property
    def x_train(self) -> torch.Tensor:
        """Normalised train inputs, on the device."""
        return self.data.normalize(self.data.x_train)

    @property
    def y_train(self) -> torch.Tensor:
        return self.data.y_train

    @cached_property
    def test_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The held-out test set: normalised inputs and labels, on the device."""
        return self.data.normalize(self.data.x_test), self.data.y_test

    # ----------------------------------------------------------------------------- the target

    @cached_property
    def target(self) -> nn.Module:
        """The target model, on the device, in eval mode."""
        from mudiff.models import load as load_model

        return load_model(self.model_name, self.prepared, self.paths["model"], self.device).eval()

    @cached_property
    def embeddings(self) -> np.ndarray:
        """The target's penultimate embeddings of the train set (N, D); its time is `paid["embeddings"]`."""
        from mudiff.training import embed

        start = time.perf_counter()
        z = embed(self.target, self.data, "train").cpu().numpy()
        self.paid["embeddings"] = time.perf_counter() - start
        return z

    @cached_property
    def dynamics(self) -> dict[str, np.ndarray]:
        """The target's training dynamics: column -> (epochs, N) array, columns in training-position order."""
        from mudiff.io import read_table

        return dynamics_arrays(read_table(self.paths["dynamics"]), self.ids)

    @cached_property
    def checkpoints(self) -> list[SampleLoss]:
        """The per-sample cross-entropy of each checkpoint of the target (epoch order), on the device."""
        from mudiff.io import load_checkpoints
        from mudiff.models import build
        from mudiff.scores.grad_norm import cross_entropy_loss

        losses = []
        for state in load_checkpoints(self.paths["checkpoints"]).values():
            m = build(self.model_name, self.prepared.shape, self.prepared.num_classes)
            m.load_state_dict(state)
            losses.append(cross_entropy_loss(m.to(self.device)))
        return losses

    # ----------------------------------------------------------------------------- the bank

    @cached_property
    def bank(self) -> dict[str, np.ndarray]:
        """The bank's arrays (`mudiff.bank`), checked against the training ids; the bank's training
        time is `paid["bank"]`."""
        from mudiff.io import read_arrays, read_json

        bank = read_arrays(self.paths["bank"])
        if not np.array_equal(bank["id_train"], self.ids):
            raise ValueError(f"{self.paths['bank']}: bank ids do not match the prepared training ids")
        self.paid["bank"] = read_json(self.paths["bank_summary"])["seconds"]
        return bank


def compute_scores(
    names: list[str], inputs: Inputs, scores: dict
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Each score of `names` in turn, through the registry: its values (numpy, training-position order)
    and its compute time (`Inputs.seconds`). `scores` is the job's scores section: each score's
    hyperparameters are its block `scores[name]` (its Params' defaults where absent)."""
    values, seconds = {}, {}
    for name in names:
        score, params = get(name), params_of(name, scores)
        start = time.perf_counter()
        out = score.compute(inputs, params)
        seconds[name] = inputs.seconds(name, time.perf_counter() - start)
        values[name] = out.cpu().numpy() if hasattr(out, "cpu") else out
    return values, seconds
