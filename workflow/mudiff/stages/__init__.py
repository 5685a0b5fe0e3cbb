"""Pipeline stages. Each module's `run(job)` reads a job's inputs, calls the stage's science
functions (which take arrays and typed configs, and can be used without the pipeline), writes
its outputs and logs one MLflow run. `job` is the JSON that the Snakemake rule passes:
rule, wildcards, input, output, params and study name.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mudiff.data import Prepared, load_prepared
from mudiff.device import choice_note, describe, memory_format, pick
from mudiff.io import load_state_dict
from mudiff.models import build
from mudiff.training import Recipe


def device_of(job: dict) -> torch.device:
    """The job's device (see `mudiff.device.pick`); the choice is stated in the job's log."""
    requested = job["params"].get("device", "auto")
    device = pick(requested)
    print(choice_note(requested, device), flush=True)
    return device


def load_data(path: str, device: torch.device):
    prepared = load_prepared(path)
    return prepared, prepared.to(device)


def load_model(model_name: str, prepared: Prepared, path: str, device: torch.device) -> nn.Module:
    model = build(model_name, prepared.shape, prepared.num_classes)
    model.load_state_dict(load_state_dict(path))
    return model.to(device=device, memory_format=memory_format(device))


def target_recipe(train: dict) -> Recipe:
    return Recipe(train["epochs"], train["batch_size"], train["lr"], train["momentum"], train["weight_decay"], train["schedule"], train["augment"])


def device_tags(device: torch.device) -> dict:
    tags = {"mudiff.device": describe(device), "mudiff.torch": torch.__version__}
    if device.type == "cpu" and not torch.cuda.is_available():
        tags["mudiff.device_note"] = "no CUDA device visible: ran on the CPU"
    return tags


def sample_positions(prepared: Prepared, ids: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(prepared.positions(np.asarray(ids))).to(device)
