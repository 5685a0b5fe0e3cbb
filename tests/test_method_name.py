"""The one method-name type: `<meta>:<inner>@<label>` parsed in one place (mudiff.methods.name)."""

from __future__ import annotations

import pytest

from mudiff import methods
from mudiff.methods.name import MethodName


@pytest.mark.parametrize(
    "text, parts",
    [
        ("finetune", (None, "finetune", None)),
        ("rum", ("rum", None, None)),
        ("rum@other", ("rum", None, "other")),
        ("rum_f:neggrad_plus", ("rum_f", "neggrad_plus", None)),
        ("rsu:finetune@random", ("rsu", "finetune", "random")),
        ("finetune@fast-2", (None, "finetune", "fast-2")),
    ],
)
def test_parse_known_answers_and_round_trip(text, parts):
    name = MethodName.parse(text)
    assert (name.meta, name.inner, name.label) == parts
    assert str(name) == text and MethodName.read(text) == name
    assert methods.split(text) == parts[:2] and methods.base_name(text) == str(name.base)


def test_helpers():
    name = MethodName.parse("rum_f:neggrad_plus@x")
    assert str(name.base) == "rum_f:neggrad_plus" and name.is_meta and name.is_variant
    assert (
        str(name.wrapped) == "neggrad_plus@x"
        and str(name.wrapped.wrap("shuffle")) == "shuffle:neggrad_plus@x"
    )
    assert (
        MethodName.parse("finetune").wrapped == MethodName.parse("finetune")
        and not MethodName.parse("finetune").is_meta
    )
    assert MethodName.parse("rum").wrapped is None and MethodName.parse("rum").is_meta
    with pytest.raises(ValueError, match="not a plain method"):
        name.wrap("rsu")


@pytest.mark.parametrize(
    "text, error",
    [
        ("finetune@two words", "bad method variant"),
        ("nomethod@x", "'nomethod'"),
        ("rum_f:retrain", "unknown"),
        ("rum:finetune", "unknown"),
        ("shuffle", "unknown"),
    ],
)
def test_parse_refuses_what_split_refuses(text, error):
    with pytest.raises(ValueError, match=error):
        MethodName.parse(text)


def test_read_is_the_grammar_alone():
    """Names read back from results are never refused, and base_name is as before for them."""
    assert MethodName.read("nomethod@x") == MethodName(None, "nomethod", "x")
    assert str(MethodName.read("a@b c")) == "a@b c" and MethodName.read("a@b c").label is None
    assert methods.base_name("nomethod@x") == "nomethod" and methods.base_name("m") == "m"
