"""The typed contract's leaf: config fields (`option`), the SGD hyperparameters every trainer shares,
and `build`, which turns a validated mapping into its dataclass.

It imports nothing of the package, so that a stage, a method, a score or a model that declares its
typed `Params` never depends on the validation code (`mudiff.config`), which knows every registry.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


def option(default: Any, help: str, **constraints: Any) -> Any:
    """A config field: its default, the help text shown in the schema, and JSON-schema limits."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help, **constraints})
    return field(default=default, metadata={"help": help, **constraints})


@dataclass
class SGD:
    """SGD hyperparameters: the one type that the target, the bank, holdout_kl's fine-tuning and every
    unlearning method extend (each with its own defaults and its length of training). SPEC: momentum
    0.9, weight decay 5e-4."""

    lr: float = option(0.01, "Learning rate.", exclusiveMinimum=0)
    batch_size: int = option(64, "Mini-batch size.", minimum=1)
    momentum: float = option(0.9, "SGD momentum.", minimum=0, maximum=1)
    weight_decay: float = option(5e-4, "SGD weight decay.", minimum=0)

    def sgd(self) -> dict[str, Any]:
        """The four SGD hyperparameters by name (what `mudiff.training.Recipe` takes besides its length)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(SGD)}


def is_section(tp: Any) -> bool:
    """Whether a type annotation is a typed section (a dataclass)."""
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


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
