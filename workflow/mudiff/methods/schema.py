"""The method registry's fragment of the config schema: the `unlearn` section, one block per method
name (every method, every meta-algorithm with every method it wraps), each derived from its `Params`."""

from __future__ import annotations

import copy

from mudiff.methods import VARIANT_PATTERN, inner_params, method_params
from mudiff.options import dataclass_schema

FORGET_SETS = {
    "type": "array",
    "items": {"type": "string"},
    "minItems": 1,
    "uniqueItems": True,
    "description": "Run only on these forget sets (default: every forget set of the study).",
}


def method(name: str, cls: type) -> dict:
    """One method's block: its Params, where it runs, and (a meta-algorithm) its wrapped method's Params."""
    block = dataclass_schema(cls)
    block["description"] = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
    block["properties"]["forget_sets"] = copy.deepcopy(FORGET_SETS)
    # A meta-algorithm's `inner` takes exactly the wrapped method's hyperparameters (for `rum`: per method).
    inner = inner_params(name)
    if isinstance(inner, dict):
        per_method = {m: {**dataclass_schema(c), "default": {}} for m, c in inner.items()}
        block["properties"]["inner"].update({"properties": per_method, "additionalProperties": False})
        block["properties"]["inner"].pop("default")  # `rum` fills only the methods named
    elif inner is not None:
        block["properties"]["inner"].update({**dataclass_schema(inner), "default": {}})
    return block


def unlearn() -> dict:
    """The keys the schema's `unlearn` section takes: every method name, and variants of them."""
    variant = {
        "type": "object",
        "description": "A variant `<method>@<label>` of a method: the same method with other hyperparameters "
        "(its own results folder).",
    }
    return {
        "properties": {name: method(name, cls) for name, cls in method_params().items()},
        "additionalProperties": False,
        "minProperties": 1,
        # a variant takes its base method's block; `config.validate` checks it against that method's schema
        "patternProperties": {VARIANT_PATTERN: variant},
    }
