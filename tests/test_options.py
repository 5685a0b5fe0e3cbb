"""options.build: a validated mapping into its typed params, refusing keys the params do not declare."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mudiff.options import build
from mudiff.sections import TrainConfig


@dataclass
class Params:
    model: str
    train: TrainConfig
    device: str = "auto"


def test_build_types_nested_sections_and_fills_their_defaults():
    p = build(Params, {"model": "mlp", "train": {"lr": 0.1}})
    assert (
        isinstance(p.train, TrainConfig) and p.train.lr == 0.1 and p.train.epochs == 30 and p.device == "auto"
    )


def test_build_names_an_unknown_key():
    with pytest.raises(TypeError, match=r"Params: unknown key\(s\) \['seed'\]"):
        build(Params, {"model": "mlp", "train": {}, "seed": 0})
    with pytest.raises(TypeError, match=r"TrainConfig: unknown key\(s\) \['lrr'\]"):
        build(Params, {"model": "mlp", "train": {"lrr": 0.1}})


def test_build_names_a_missing_key_and_refuses_a_non_mapping():
    with pytest.raises(TypeError, match=r"Params: missing key\(s\) \['train'\]"):
        build(Params, {"model": "mlp"})
    with pytest.raises(TypeError, match="expected a mapping of its fields, got list"):
        build(Params, [])
