"""The model registry. Each model exposes `features(x)` (the penultimate embedding) and `head`."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

import torch
from torch import nn

from mudiff.models.registry import MODELS

if TYPE_CHECKING:
    from mudiff.data import Prepared


def build(name: str, in_shape: tuple[int, int, int], num_classes: int, seed: int | None = None) -> nn.Module:
    """A freshly initialised model; `seed` makes the initialisation reproducible."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {sorted(MODELS)}")
    module, _, attr = MODELS[name].partition(":")
    factory = getattr(importlib.import_module(module), attr)
    if seed is None:
        return factory(in_shape, num_classes)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory(in_shape, num_classes)


def load(name: str, prepared: Prepared, path: str, device: torch.device) -> nn.Module:
    """A saved model (a state_dict, read with `weights_only=True`) of the prepared data's shape, on `device`
    in its memory format."""
    from mudiff.device import memory_format
    from mudiff.io import load_state_dict

    model = build(name, prepared.shape, prepared.num_classes)
    model.load_state_dict(load_state_dict(path))
    return model.to(device=device, memory_format=memory_format(device))
