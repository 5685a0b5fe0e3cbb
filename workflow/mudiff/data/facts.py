"""What the config must know of a dataset before any of it is loaded: its classes, the size of its
train set, the models that fit its images and how large its jobs are.

Each loader module declares the facts of its datasets (`FACTS`, beside the code that reads them);
the list of datasets is the loader registry's (`data/registry.py`). Nothing here reads data.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass

from mudiff.data.registry import LOADERS


@dataclass(frozen=True)
class Facts:
    classes: int
    train_size: int  # the official train set; for a dataset split here, every sample (`split`)
    models: tuple[str, ...]  # the architectures that fit its images
    scale: int  # a job's memory and wall time, in units of the digits study's (rules/common.smk)
    split: bool = False  # no official split: train and test are cut by `data.test_fraction`


def facts(dataset: str) -> Facts:
    if dataset not in LOADERS:
        raise ValueError(f"unknown dataset {dataset!r}; known: {sorted(LOADERS)}")
    return importlib.import_module(LOADERS[dataset]).FACTS[dataset]


def test_count(samples: int, test_fraction: float) -> int:
    """Test samples of a stratified split (scikit-learn's train_test_split takes ceil(fraction * n))."""
    return math.ceil(test_fraction * samples)


def full_train_size(data: dict) -> int:
    """The size of the whole train set of a data config (a split dataset: its samples minus the test split)."""
    f = facts(data["dataset"])
    if f.split:
        return f.train_size - test_count(f.train_size, data.get("test_fraction", 0.2))
    return f.train_size


def subset_size(train_size: float | None, n_full: int) -> int:
    """The count `data.train_size` asks for out of `n_full` samples (null or 0: all of them)."""
    if not train_size:
        return n_full
    return int(round(train_size * n_full)) if train_size < 1 else int(train_size)


def train_size(data: dict) -> int:
    """The number of training samples a data config gives: the whole train set, or its `train_size` subset."""
    return subset_size(data.get("train_size"), full_train_size(data))


def dataset_dir(data: dict) -> str:
    """The prepared dataset's folder under `data.root`: the dataset's name, plus what else decides its
    content when not the default: the digits split (e.g. `digits-split1-test0.3`) and the `train_size`
    subset (e.g. `fashion_mnist-n10000-seed0`). Data of different content never shares a folder, so a
    study of other data leaves every other study's data, and results, as they are."""
    parts = [data["dataset"]]
    if facts(data["dataset"]).split:
        split_seed, test_fraction = data.get("split_seed", 0), data.get("test_fraction", 0.2)
        if (split_seed, test_fraction) != (0, 0.2):
            parts.append(f"split{split_seed}-test{test_fraction:g}")
    if data.get("train_size"):
        parts.append(f"n{train_size(data)}-seed{data.get('subset_seed', 0)}")
    return "-".join(parts)
