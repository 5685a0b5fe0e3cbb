"""Pipeline stages. Each module's `run(job)` reads a job's inputs, calls the stage's science
functions (which take arrays and typed configs, and can be used without the pipeline), writes
its outputs and logs one MLflow run. `job` is the JSON that the Snakemake rule passes:
rule, wildcards, input, output, params and study name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported by the functions that need it: table-only stages start faster
    import torch

    from mudiff.data import Prepared
    from mudiff.sections import TrainConfig
    from mudiff.training import Recipe


def device_of(requested: str) -> torch.device:
    """The device a job's `device` param asks for (see `mudiff.device.pick`: a CUDA job claims a GPU
    of its own); the choice, with the GPU and its CUDA settings, is stated in the job's log."""
    from mudiff.device import choice_note, pick

    device = pick(requested)
    print(choice_note(requested, device), flush=True)
    return device


def load_data(path: str, device: torch.device):
    from mudiff.data import load_prepared

    prepared = load_prepared(path)
    return prepared, prepared.to(device)


def target_recipe(train: TrainConfig) -> Recipe:
    """How the target was trained (the train stage runs it; retrain reuses it)."""
    from mudiff.training import Recipe

    return Recipe.of(train, train.epochs, train.schedule, train.augment)


def device_tags(device: torch.device) -> dict:
    import torch

    from mudiff.device import describe, job_tags

    tags = {"mudiff.device": describe(device), "mudiff.torch": torch.__version__, **job_tags(device)}
    if device.type == "cpu" and not torch.cuda.is_available():
        tags["mudiff.device_note"] = "no CUDA device visible: ran on the CPU"
    return tags


def sample_positions(prepared: Prepared, ids: np.ndarray, device: torch.device) -> torch.Tensor:
    import torch

    return torch.from_numpy(prepared.positions(np.asarray(ids))).to(device)
