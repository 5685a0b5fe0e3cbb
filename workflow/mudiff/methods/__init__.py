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
from types import ModuleType, SimpleNamespace

# re-exported: the grammar of names is mudiff.methods.name's
from mudiff.methods.name import INNER, VARIANT_PATTERN, WRAPPERS, MethodName, names  # noqa: F401
from mudiff.methods.registry import META, METHODS  # name -> module tables


def base_name(name: str) -> str:
    """The method a name runs: `name` without its `@<label>` variant suffix."""
    return str(MethodName.read(name).base)


def split(name: str) -> tuple[str | None, str | None]:
    """(meta, inner) of a name: (None, name) for a plain method, ('rum', None) for `rum`;
    a variant `<name>@<label>` splits as its base name (`mudiff.methods.name.MethodName`)."""
    parsed = MethodName.parse(name)
    return parsed.meta, parsed.inner


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
