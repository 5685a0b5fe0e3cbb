"""Static import graph of stage modules (Snakemake inputs)."""

from __future__ import annotations

from mudiff.sources import PACKAGE_ROOT, module_files


def _rel(module: str) -> set[str]:
    return {str(__import__("pathlib").Path(f).relative_to(PACKAGE_ROOT)) for f in module_files(module)}


def test_unlearn_stage_files():
    files = _rel("mudiff.stages.unlearn")
    for f in (
        "stages/unlearn.py",
        "stages/__init__.py",
        "methods/__init__.py",
        "methods/base.py",
        "training/loop.py",
        "__init__.py",
        "forget_sets.py",
        "io.py",
    ):
        assert f in files, f
    # the registry names its members as strings: no method module is a dependency
    for f in ("methods/finetune.py", "methods/neggrad_plus.py", "methods/retrain.py", "models/mlp.py"):
        assert f not in files, f
    # nor unrelated stages
    assert "stages/train_bank.py" not in files and "bank/__init__.py" not in files


def test_finetune_method_files():
    files = _rel("mudiff.methods.finetune")
    assert {
        "methods/finetune.py",
        "methods/base.py",
        "methods/__init__.py",
        "training/loop.py",
        "__init__.py",
    } <= files
    assert "methods/neggrad_plus.py" not in files and "stages/unlearn.py" not in files


def test_paths_are_absolute_existing_files():
    for f in module_files("mudiff.stages.unlearn"):
        p = __import__("pathlib").Path(f)
        assert p.is_absolute() and p.is_file() and p.suffix == ".py"
