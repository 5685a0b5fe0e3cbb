"""The typed contract's leaf: config fields (`option`), the SGD hyperparameters every trainer shares,
and `build`, which turns a validated mapping into its dataclass.

It imports nothing of the package, so that a stage, a method, a score or a model that declares its
typed `Params` never depends on the validation code (`mudiff.config`), which knows every registry.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

T = TypeVar("T")


def option(default: Any, help: str, **constraints: Any) -> Any:
    """A config field: its default, the help text shown in the schema, and JSON-schema limits."""
    if isinstance(default, (list, dict)):  # each instance its own copy, nested values included
        return field(default_factory=lambda: copy.deepcopy(default), metadata={"help": help, **constraints})
    return field(default=default, metadata={"help": help, **constraints})


@dataclass
class SGDSettings:
    """SGD hyperparameters: the one type that the target, the bank, holdout_kl's fine-tuning and every
    unlearning method extend (each with its own defaults and its length of training). SPEC: momentum
    0.9, weight decay 5e-4."""

    lr: float = option(0.01, "Learning rate.", exclusiveMinimum=0)
    batch_size: int = option(64, "Mini-batch size.", minimum=1)
    momentum: float = option(0.9, "SGD momentum.", minimum=0, maximum=1)
    weight_decay: float = option(5e-4, "SGD weight decay.", minimum=0)

    def sgd(self) -> dict[str, Any]:
        """The four SGD hyperparameters by name (what `mudiff.training.Recipe` takes besides its length)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(SGDSettings)}


def is_section(tp: Any) -> bool:
    """Whether a type annotation is a typed section (a dataclass)."""
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def type_schema(tp: Any) -> dict:
    """JSON schema of a Python type annotation (the subset our configs use)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if is_section(tp):
        return dataclass_schema(tp)
    if origin is Literal:
        values = list(args[0]) if len(args) == 1 and isinstance(args[0], tuple) else list(args)
        return {"enum": values}
    if origin in (list, tuple):
        return {"type": "array", "items": type_schema(args[0])}
    if origin is dict:
        out = {
            "type": "object",
            "additionalProperties": type_schema(args[1]) if args[1] is not dict else {"type": "object"},
        }
        if typing.get_origin(args[0]) is Literal:
            out["propertyNames"] = type_schema(args[0])
        return out
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [type_schema(a) for a in args]}
    if tp is dict:
        return {"type": "object"}
    return {
        type(None): {"type": "null"},
        bool: {"type": "boolean"},
        int: {"type": "integer"},
        float: {"type": "number"},
        str: {"type": "string"},
    }[tp]


def dataclass_schema(cls: type) -> dict:
    hints = typing.get_type_hints(cls)
    props = {}
    for f in dataclasses.fields(cls):
        if f.metadata.get("derived"):  # filled from other keys, not a key of its own
            continue
        meta = dict(f.metadata)
        prop = type_schema(hints[f.name])
        prop["description"] = meta.pop("help", "")
        prop.update(meta)
        # A section (a nested dataclass) defaults to {}, which `_fill` completes from its own schema.
        prop["default"] = {} if is_section(hints[f.name]) else _field_default(f, hints[f.name])
        if is_lr(f.name) and prop.get("type") == "number":  # every learning rate, whoever defines it
            prop.pop("minimum", None)
            prop.update(exclusiveMinimum=0, maximum=min(prop.get("maximum", LR_MAX), LR_MAX))
        props[f.name] = prop
    return {"type": "object", "properties": props, "additionalProperties": False}


# The largest learning rate a config may give: SGD at a step above this diverges on any of our models,
# so a larger value is a typo (1e3 for 1e-3) or a unit slip, refused before the target or bank trains.
LR_MAX = 10


def is_lr(key: str) -> bool:
    """Whether a config key is a learning rate (`lr` or `<something>_lr`), held to 0 < lr <= LR_MAX."""
    return key == "lr" or key.endswith("_lr")


def _field_default(f: dataclasses.Field, tp: Any) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def build(cls: type[T], values: dict) -> T:
    """An instance of the dataclass `cls` from a validated mapping; nested sections (a field typed as a
    dataclass, a dict of them, or an optional one) become their dataclasses too. A key `cls` does not
    declare is refused with its name: a job's params and its stage's `Params` must agree."""
    if isinstance(values, cls):
        return values
    if not isinstance(values, dict):
        raise TypeError(f"{cls.__name__}: expected a mapping of its fields, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - known)
    if unknown:
        raise TypeError(f"{cls.__name__}: unknown key(s) {unknown}; fields: {sorted(known)}")
    required = dataclasses.MISSING
    missing = sorted(
        f.name
        for f in dataclasses.fields(cls)
        if f.init and f.default is required and f.default_factory is required and f.name not in values
    )
    if missing:
        raise TypeError(f"{cls.__name__}: missing key(s) {missing}")
    return cls(**{key: _typed(hints[key], value) for key, value in values.items()})


def _typed(tp: Any, value: Any) -> Any:
    if is_section(tp):
        return build(tp, value) if isinstance(value, dict) else value
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is dict and len(args) == 2 and isinstance(value, dict):
        return {k: _typed(args[1], v) for k, v in value.items()}
    if origin in (typing.Union, types.UnionType) and isinstance(value, dict):
        sections = [a for a in args if is_section(a)]
        if len(sections) == 1:
            return build(sections[0], value)
    return value


def plain(section: Any) -> Any:
    """A typed section back as the mapping it was built from (for records and MLflow params)."""
    return dataclasses.asdict(section) if dataclasses.is_dataclass(section) else section
