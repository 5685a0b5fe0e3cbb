"""The unlearning-method registry: a method is one module plus one line here.

A method module defines `Params` (a dataclass of its hyperparameters with SPEC's defaults;
the config schema is derived from it) and `unlearn(model, task, params) -> model`. See
`finetune.py` for the shortest example and `docs/add_a_method.md`.

Meta-algorithms (`META`) wrap methods and are named `<meta>:<method>` (e.g. `rum_f:neggrad_plus`,
`rsu:finetune`); `rum` picks a method per subset from its own config and takes no suffix. The
name, colon included, is the method's key in config, its wildcard and its results folder.

A method may run several times in one study with different hyperparameters as variants named
`<name>@<label>` (e.g. `rsu:finetune@hard_to_easy: {order: hard_to_easy}`): a variant is the
method `<name>` in every respect but its config block and results folder.
"""

from __future__ import annotations

import importlib
import re
from types import ModuleType, SimpleNamespace

from mudiff.methods.registry import META, METHODS  # name -> module tables

WRAPPERS = ("rum_f", "shuffle", "rsu")
# Retrain starts from scratch, so wrapping it in steps that start from the last model means nothing.
INNER = tuple(m for m in METHODS if m != "retrain")


def names() -> list[str]:
    """Every valid method name: the methods, each wrapper with each inner method, and `rum`."""
    return list(METHODS) + [f"{w}:{m}" for w in WRAPPERS for m in INNER] + ["rum"]


VARIANT_PATTERN = r"^[^@]+@[A-Za-z0-9_-]+$"  # also the config schema's pattern for variant keys


def base_name(name: str) -> str:
    """The method a name runs: `name` without its `@<label>` variant suffix."""
    return name.partition("@")[0] if re.match(VARIANT_PATTERN, name) else name


def split(name: str) -> tuple[str | None, str | None]:
    """(meta, inner) of a name: (None, name) for a plain method, ('rum', None) for `rum`;
    a variant `<name>@<label>` splits as its base name."""
    if "@" in name and not re.match(VARIANT_PATTERN, name):
        raise ValueError(f"bad method variant {name!r}: write '<method>@<label>', the label of letters, digits, _ or -")
    name = base_name(name)
    if name in METHODS:
        return None, name
    if name == "rum":
        return "rum", None
    meta, _, inner = name.partition(":")
    if meta in WRAPPERS and inner in INNER:
        return meta, inner
    raise ValueError(f"unknown unlearning method {name!r}; known: {sorted(names())}")


def get(name: str) -> ModuleType | SimpleNamespace:
    """The method called `name`: something with `Params` and `unlearn(model, task, params)`."""
    meta, inner = split(name)
    if meta is None:
        return importlib.import_module(METHODS[inner])
    return importlib.import_module(META[meta]).bind(meta, inner)


def modules(name: str, hyper: dict | None = None) -> list[str]:
    """The modules a method's job runs (the meta-algorithm's and every method it calls)."""
    meta, inner = split(name)
    if meta is None:
        return [METHODS[inner]]
    called = [inner] if inner else get(name).methods_called(hyper or {})
    return [META[meta]] + [METHODS[m] for m in called]


def needs_scores(name: str) -> bool:
    """Whether a method reads the per-sample scores table (meta-algorithms refine F by a score)."""
    return split(name)[0] is not None


def method_params() -> dict[str, type]:
    return {name: get(name).Params for name in names()}


def inner_params(name: str) -> dict[str, type] | type | None:
    """Params of the method(s) a meta-algorithm passes `inner` hyperparameters to (for the schema)."""
    meta, inner = split(name)
    if meta is None:
        return None
    if inner is not None:
        return get(inner).Params
    return {m: get(m).Params for m in INNER}
