"""CIFAR-10 and CIFAR-100 from the official python archive: torchvision download or a local folder.

A local folder may hold the extracted batch folder (`cifar-10-batches-py/`, `cifar-100-python/`),
the archive itself, or the batch files directly. Every file's md5 is checked against the
official list (torchvision's) before it is unpickled.
"""

from __future__ import annotations

import pickle
import tarfile
import zlib
from pathlib import Path

import numpy as np

from mudiff.data import Dataset
from mudiff.data.checksums import ChecksumError, digest, verify
from mudiff.data.facts import Facts

FACTS = {
    "cifar10": Facts(classes=10, train_size=50_000, models=("resnet18", "resnet50"), scale=8),
    "cifar100": Facts(classes=100, train_size=50_000, models=("resnet18", "resnet50"), scale=8),
}

SPECS = {
    "cifar10": {
        "archive": ("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),
        "folder": "cifar-10-batches-py",
        "train": [
            ("data_batch_1", "c99cafc152244af753f735de768cd75f"),
            ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
            ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
            ("data_batch_4", "634d18415352ddfa80567beed471001a"),
            ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
        ],
        "test": [("test_batch", "40351d587109b95175f43aff81a1287e")],
        "label_key": b"labels",
        "classes": 10,
    },
    "cifar100": {
        "archive": ("cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85"),
        "folder": "cifar-100-python",
        "train": [("train", "16019d7e3df5f24257cddd939b257f8d")],
        "test": [("test", "f0ef6b0ae62326f3e7ffdfab6717acfc")],
        "label_key": b"fine_labels",
        "classes": 100,
    },
}


def parse_batches(paths: list[Path], label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and int64 labels from official CIFAR pickled batches, in order."""
    xs, ys = [], []
    for path in paths:
        try:  # `load` checks every file's md5 first: a failure here is an unverified or mislisted file
            with open(path, "rb") as fh:
                entry = pickle.load(fh, encoding="bytes")
            data, labels = entry[b"data"], entry[label_key]
        except (
            pickle.UnpicklingError,
            EOFError,
            ValueError,
            TypeError,
            KeyError,
            IndexError,
            AttributeError,
        ) as err:
            raise ValueError(
                f"{path}: not a readable CIFAR batch ({type(err).__name__}: {err}); md5 {digest(path)}"
            ) from err
        data = np.asarray(data, dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise ValueError(f"{path}: data has shape {data.shape}, expected (N, 3072)")
        labels = np.asarray(labels, dtype=np.int64)
        if len(labels) != len(data):
            raise ValueError(f"{path}: {len(data)} images but {len(labels)} labels")
        xs.append(data.reshape(-1, 3, 32, 32))
        ys.append(labels)
    return np.concatenate(xs), np.concatenate(ys)


def _batch_folder(name: str, source: str, download_dir: str) -> Path:
    spec = SPECS[name]
    if source == "default":
        import torchvision

        cls = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
        cls(download_dir, train=True, download=True)  # verifies the archive's md5
        return Path(download_dir) / spec["folder"]
    folder = Path(source)
    if not folder.is_dir():
        raise FileNotFoundError(f"data.source: local folder {folder} does not exist")
    if (folder / spec["folder"]).is_dir():
        return folder / spec["folder"]
    archive_name, archive_md5 = spec["archive"]
    if (folder / archive_name).is_file():
        verify(str(folder / archive_name), folder / archive_name, archive_md5)
        target = Path(download_dir)
        target.mkdir(parents=True, exist_ok=True)
        archive = folder / archive_name
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(target, filter="data")
        except (tarfile.TarError, EOFError, zlib.error) as err:  # its md5 matched: a mislisted digest
            raise ChecksumError(
                f"{archive}: corrupt archive ({type(err).__name__}: {err}) although its md5 {digest(archive)} "
                f"matches the expected {archive_md5}"
            ) from err
        return target / spec["folder"]
    return folder


def load(name: str, source: str = "default", download_dir: str = "downloads", **_) -> Dataset:
    spec = SPECS[name]
    folder = _batch_folder(name, source, download_dir)
    files = {}
    for fname, md5 in spec["train"] + spec["test"]:
        path = folder / fname
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing CIFAR batch file")
        files[fname] = "md5:" + verify(str(path), path, md5)
    x_train, y_train = parse_batches([folder / f for f, _ in spec["train"]], spec["label_key"])
    x_test, y_test = parse_batches([folder / f for f, _ in spec["test"]], spec["label_key"])
    return Dataset(
        name=name,
        x_train=x_train,
        y_train=y_train,
        id_train=np.arange(len(y_train), dtype=np.int64),
        x_test=x_test,
        y_test=y_test,
        id_test=np.arange(len(y_test), dtype=np.int64),
        num_classes=spec["classes"],
        scale=255.0,
        files=files,
    )
