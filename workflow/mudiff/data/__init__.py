"""Datasets as arrays keyed by sample id, one loader per dataset, normalisation in one place.

Every loader returns a `Dataset`: uint8 images (N, C, H, W), int64 labels and int64 ids. A
sample's id is its index in the source training (or test) set; `digits`, which has no
official split, keeps its index in `load_digits()` on both sides of the split.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field

import numpy as np
import torch

from mudiff.data.registry import LOADERS


@dataclass
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    id_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    id_test: np.ndarray
    num_classes: int
    scale: float  # raw pixel value that maps to 1.0
    files: dict[str, str] = field(default_factory=dict)  # file -> verified digest

    def __post_init__(self) -> None:
        for side in ("train", "test"):
            x, y, ids = (getattr(self, f"{a}_{side}") for a in ("x", "y", "id"))
            if not (len(x) == len(y) == len(ids)):
                raise ValueError(f"{self.name} {side}: {len(x)} images, {len(y)} labels, {len(ids)} ids")
            if x.dtype != np.uint8 or x.ndim != 4:
                raise ValueError(
                    f"{self.name} {side}: images must be uint8 (N, C, H, W), got {x.dtype} {x.shape}"
                )
            if len(np.unique(ids)) != len(ids):
                raise ValueError(f"{self.name} {side}: ids are not unique")

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])

    def channel_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel mean and std of the training images, in [0, 1] units."""
        x = self.x_train.astype(np.float64) / self.scale
        return x.mean(axis=(0, 2, 3)), x.std(axis=(0, 2, 3))


def load_source(
    name: str,
    source: str,
    download_dir: str,
    train_size: float | None = None,
    subset_seed: int = 0,
    **options,
) -> Dataset:
    """Load a dataset from its source ('default' or a local folder), verifying checksums, and cut its
    train set to the class-stratified `train_size` subset (null or 0: the whole train set)."""
    if name not in LOADERS:
        raise ValueError(f"unknown dataset {name!r}; known: {sorted(LOADERS)}")
    module = importlib.import_module(LOADERS[name])
    ds = module.load(name, source=source, download_dir=download_dir, **options)
    return stratified_subset(ds, train_size, subset_seed) if train_size else ds


def stratified_counts(y: np.ndarray, n: int, num_classes: int) -> np.ndarray:
    """Per-class counts of an `n`-sample subset of labels `y`: each class within one of its proportional share
    n * n_c / N (largest remainders). Every class present in `y` keeps at least one sample when n allows; a class
    whose share is below one takes its sample from the class furthest above its share, so only on extreme
    imbalance with a tiny n can a large class end more than one below its share."""
    have = np.bincount(y, minlength=num_classes)
    quota = n * have / have.sum()
    counts = np.floor(quota).astype(np.int64)
    remainder = quota - counts
    for c in np.argsort(-remainder, kind="stable")[: n - counts.sum()]:
        counts[c] += 1
    if n >= np.count_nonzero(have):
        for c in np.flatnonzero((counts == 0) & (have > 0)):  # a tiny class (share below 1/n): one sample
            # of the classes that can spare one, the furthest above its share gives one up (it stays within one)
            donor = int(np.argmax(np.where(counts > 1, counts - quota, -np.inf)))
            counts[donor] -= 1
            counts[c] += 1
    return counts


def stratified_subset(ds: Dataset, train_size: float, seed: int) -> Dataset:
    """`ds` with its train set cut to a class-stratified random subset (ids stay the source indices; test as is).

    `train_size` is a share of the train set if below 1, else a count (`mudiff.data.facts.subset_size`). The draw is
    `numpy.random.default_rng(seed)`, class by class in label order, so one seed always gives one subset.
    """
    from mudiff.data.facts import subset_size

    n_full = len(ds.y_train)
    n = subset_size(train_size, n_full)
    if not ds.num_classes <= n <= n_full:
        raise ValueError(
            f"data.train_size: {train_size} gives {n} samples; {ds.name} allows {ds.num_classes} to {n_full}"
        )
    counts = stratified_counts(ds.y_train, n, ds.num_classes)
    rng = np.random.default_rng(seed)
    keep = np.concatenate(
        [rng.choice(np.flatnonzero(ds.y_train == c), size=k, replace=False) for c, k in enumerate(counts)]
    )
    keep = keep[np.argsort(ds.id_train[keep], kind="stable")]  # in id order, as the loaders give them
    return dataclasses.replace(
        ds, x_train=ds.x_train[keep], y_train=ds.y_train[keep], id_train=ds.id_train[keep]
    )


# --------------------------------------------------------------------------- prepared form


def save_prepared(ds: Dataset, path) -> None:
    from mudiff.io import write_arrays

    mean, std = ds.channel_stats()
    write_arrays(
        path,
        x_train=ds.x_train,
        y_train=ds.y_train,
        id_train=ds.id_train,
        x_test=ds.x_test,
        y_test=ds.y_test,
        id_test=ds.id_test,
        num_classes=np.array(ds.num_classes),
        scale=np.array(ds.scale, dtype=np.float64),
        mean=mean,
        std=std,
    )


@dataclass
class Prepared:
    """A prepared dataset, as every stage after `prepare` reads it."""

    x_train: np.ndarray
    y_train: np.ndarray
    id_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    id_test: np.ndarray
    num_classes: int
    scale: float
    mean: np.ndarray
    std: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])

    def positions(self, ids: np.ndarray) -> np.ndarray:
        """Row positions in the training arrays of the given sample ids (error on unknown ids)."""
        order = np.argsort(self.id_train)
        pos = np.searchsorted(self.id_train, ids, sorter=order)
        pos = np.clip(pos, 0, len(order) - 1)
        found = order[pos]
        bad = self.id_train[found] != ids
        if bad.any():
            raise ValueError(
                f"{int(bad.sum())} ids are not in the training set, e.g. {ids[bad][:5].tolist()}"
            )
        return found

    def to(self, device: torch.device) -> "DeviceData":
        return DeviceData(self, device)


def load_prepared(path) -> Prepared:
    from mudiff.io import read_arrays

    a = read_arrays(path)
    return Prepared(
        x_train=a["x_train"],
        y_train=a["y_train"],
        id_train=a["id_train"],
        x_test=a["x_test"],
        y_test=a["y_test"],
        id_test=a["id_test"],
        num_classes=int(a["num_classes"]),
        scale=float(a["scale"]),
        mean=a["mean"],
        std=a["std"],
    )


class DeviceData:
    """Train and test images on the device as uint8; `batch` normalises (the one place it happens)."""

    def __init__(self, prepared: Prepared, device: torch.device):
        self.device = device
        self.num_classes = prepared.num_classes
        self.shape = prepared.shape
        self.x_train = torch.from_numpy(prepared.x_train).to(device)
        self.y_train = torch.from_numpy(prepared.y_train).to(device)
        self.x_test = torch.from_numpy(prepared.x_test).to(device)
        self.y_test = torch.from_numpy(prepared.y_test).to(device)
        c = len(prepared.mean)
        self._scale = torch.tensor(prepared.scale, dtype=torch.float32, device=device)
        self._mean = torch.tensor(prepared.mean, dtype=torch.float32, device=device).view(1, c, 1, 1)
        self._std = torch.tensor(prepared.std, dtype=torch.float32, device=device).view(1, c, 1, 1)

    def normalize(self, x_uint8: torch.Tensor) -> torch.Tensor:
        shape = x_uint8.shape
        x = x_uint8.reshape(-1, *shape[-3:]).float() / self._scale
        return ((x - self._mean) / self._std).reshape(shape)

    def train_batch(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.normalize(self.x_train[positions]), self.y_train[positions]

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw uint8 images and labels of 'train' or 'test'."""
        return (self.x_train, self.y_train) if name == "train" else (self.x_test, self.y_test)
