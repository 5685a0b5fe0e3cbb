"""The unlearning-method registry: a method is one module plus one line here.

A method module defines `Params` (a dataclass of its hyperparameters with SPEC's defaults;
the config schema is derived from it) and `unlearn(model, task, params) -> model`. See
`finetune.py` for the shortest example and the README's "Add your own method".
"""

from __future__ import annotations

import importlib
from types import ModuleType

METHODS = {
    "retrain": "mudiff.methods.retrain",
    "finetune": "mudiff.methods.finetune",
    "neggrad_plus": "mudiff.methods.neggrad_plus",
}


def get(name: str) -> ModuleType:
    if name not in METHODS:
        raise ValueError(f"unknown unlearning method {name!r}; known: {sorted(METHODS)}")
    return importlib.import_module(METHODS[name])


def method_params() -> dict[str, type]:
    return {name: get(name).Params for name in METHODS}
