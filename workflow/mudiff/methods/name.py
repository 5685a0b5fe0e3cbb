"""A method's name, parsed once: `<meta>:<inner>@<label>`.

The grammar: a plain method (`finetune`), a wrapper around one inner method (`rum_f:neggrad_plus`,
`shuffle:salun`, `rsu:finetune`), or `rum` (a method per subset, no inner); any of them may carry a
variant label (`rsu:finetune@random`): the same method with another config block and results folder.

Torch-free and importing only the registry's tables, so that the config, the rules, the analysis and
the report all read names the same way, without string operations of their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from mudiff.methods.registry import METHODS

WRAPPERS = ("rum_f", "shuffle", "rsu")
# Retrain starts from scratch, so wrapping it in steps that start from the last model means nothing.
INNER = tuple(m for m in METHODS if m != "retrain")

VARIANT_PATTERN = r"^[^@]+@[A-Za-z0-9_-]+$"  # also the config schema's pattern for variant keys


def names() -> list[str]:
    """Every valid method name: the methods, each wrapper with each inner method, and `rum`."""
    return list(METHODS) + [f"{w}:{m}" for w in WRAPPERS for m in INNER] + ["rum"]


@dataclass(frozen=True)
class MethodName:
    """(meta, inner, label): (None, 'finetune', None) for `finetune`, ('rum', None, None) for `rum`,
    ('rsu', 'finetune', 'random') for `rsu:finetune@random`."""

    meta: str | None
    inner: str | None
    label: str | None = None

    @classmethod
    def parse(cls, name: str | MethodName) -> MethodName:
        """The parts of a valid name; a ValueError names a bad variant label or an unknown method."""
        if isinstance(name, MethodName):
            return name
        if "@" in name and not re.match(VARIANT_PATTERN, name):
            raise ValueError(
                f"bad method variant {name!r}: write '<method>@<label>', the label of letters, digits, _ or -"
            )
        parsed = cls.read(name)
        body = str(parsed.base)
        if body in METHODS or body == "rum" or (parsed.meta in WRAPPERS and parsed.inner in INNER):
            return parsed
        raise ValueError(f"unknown unlearning method {body!r}; known: {sorted(names())}")

    @classmethod
    def read(cls, name: str | MethodName) -> MethodName:
        """The parts of a name by the grammar alone, never refused (for names read back from results):
        an unknown method keeps its parts, and a label that is no variant label stays in the name."""
        if isinstance(name, MethodName):
            return name
        label = None
        if re.match(VARIANT_PATTERN, name):
            name, _, label = name.partition("@")
        if name == "rum":
            return cls("rum", None, label)
        if ":" in name:
            meta, _, inner = name.partition(":")
            return cls(meta, inner, label)
        return cls(None, name, label)

    def __str__(self) -> str:
        if self.meta is None:
            body = self.inner
        else:
            body = self.meta if self.inner is None else f"{self.meta}:{self.inner}"
        return body if self.label is None else f"{body}@{self.label}"

    @property
    def base(self) -> MethodName:
        """The method this name runs: itself without its variant label."""
        return replace(self, label=None)

    @property
    def is_meta(self) -> bool:
        """A meta-algorithm (a wrapper or `rum`), which refines F by a score."""
        return self.meta is not None

    @property
    def is_variant(self) -> bool:
        return self.label is not None

    @property
    def wrapped(self) -> MethodName | None:
        """The plain method a wrapper runs, with this name's variant label (`rum_f:neggrad_plus@x` ->
        `neggrad_plus@x`); a plain method is its own; None for `rum`."""
        return None if self.inner is None else MethodName(None, self.inner, self.label)

    def wrap(self, meta: str) -> MethodName:
        """This plain method run inside the wrapper `meta`, its variant label kept."""
        if self.meta is not None:
            raise ValueError(f"{self} is not a plain method")
        return MethodName(meta, self.inner, self.label)
