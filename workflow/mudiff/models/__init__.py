"""The model registry. Each model exposes `features(x)` (the penultimate embedding) and `head`."""

from __future__ import annotations

import importlib

import torch
from torch import nn

from mudiff.models.registry import MODELS


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


def has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
