"""MNIST and Fashion-MNIST from the official idx files: torchvision download or a local folder.

Digests: torchvision's md5 of the official .gz files, and our sha256 of the decompressed
bytes. Debian's `dataset-fashion-mnist` re-compresses the .gz files, so a local folder is
accepted when either the .gz md5 or the decompressed sha256 matches.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from mudiff.data import Dataset
from mudiff.data.checksums import ChecksumError, digest
from mudiff.data.facts import Facts

FACTS = {
    name: Facts(classes=10, train_size=60_000, models=("mlp", "smallcnn", "resnet18"), scale=4)
    for name in ("fashion_mnist", "mnist")
}

STEMS = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

# stem -> (md5 of the official .gz, sha256 of the decompressed bytes or None where unrecorded)
DIGESTS = {
    "fashion_mnist": {
        "train-images-idx3-ubyte": (
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        ),
        "train-labels-idx1-ubyte": (
            "25c81989df183df01b3e8a0aad5dffbe",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        ),
        "t10k-images-idx3-ubyte": (
            "bef4ecab320f06d8554ea6380940ec79",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        ),
        "t10k-labels-idx1-ubyte": (
            "bb300cfdad3c16e7a12a480ee83cd310",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ),
    },
    "mnist": {
        "train-images-idx3-ubyte": ("f68b3c2dcbeaaa9fbdd348bbdeb94873", None),
        "train-labels-idx1-ubyte": ("d53e105ee54ea40749a09fcbcd1e9432", None),
        "t10k-images-idx3-ubyte": ("9fb629c4189551a2d022fa330f9573f3", None),
        "t10k-labels-idx1-ubyte": ("ec29112dd5afa0611ce80d1b7f02629c", None),
    },
}
TORCHVISION = {"fashion_mnist": "FashionMNIST", "mnist": "MNIST"}


def parse_idx(data: bytes, name: str = "idx file") -> np.ndarray:
    """Parse the idx format: magic (0, 0, dtype 0x08 = uint8, ndim), big-endian dims, then data."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{name}: not an unsigned-byte idx file (bad magic {data[:4].hex()})")
    ndim = data[3]
    header = 4 + 4 * ndim
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(dims))
    if len(data) - header != expected:
        raise ValueError(
            f"{name}: truncated or padded: {len(data) - header} bytes of data, dims {dims} need {expected}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _gunzip(gz: Path, gz_md5: str, raw_sha256: str | None) -> bytes:
    """The decompressed bytes of `gz`, or ChecksumError naming it with the expected and actual digests."""
    try:
        return gzip.decompress(gz.read_bytes())
    except (
        OSError,
        EOFError,
        zlib.error,
    ) as err:  # bad header: BadGzipFile; bad body: zlib.error; cut short: EOFError
        raw = f", sha256 {raw_sha256} of the decompressed bytes" if raw_sha256 else ""
        raise ChecksumError(
            f"{gz}: corrupt gzip ({type(err).__name__}: {err}); expected md5 {gz_md5} of the official .gz{raw}, "
            f"got md5 {digest(gz)}; download it again"
        ) from err


def read_verified(folder: Path, stem: str, gz_md5: str, raw_sha256: str | None) -> tuple[bytes, str]:
    """The decompressed bytes of `stem` (or `stem`.gz) in `folder`, after checking a digest."""
    gz, raw = folder / f"{stem}.gz", folder / stem
    if gz.is_file():
        data = _gunzip(gz, gz_md5, raw_sha256)
        if digest(gz) == gz_md5:
            return data, f"md5:{gz_md5}"
        where = gz
    elif raw.is_file():
        data, where = raw.read_bytes(), raw
    else:
        raise FileNotFoundError(f"{folder}: neither {stem} nor {stem}.gz is there")
    actual = digest(data, "sha256")
    if raw_sha256 is None:
        raise ChecksumError(
            f"checksum mismatch for {where}: expected md5 {gz_md5} of the official .gz, got {digest(where)}; "
            "no digest of the decompressed bytes is recorded for it"
        )
    if actual != raw_sha256:
        raise ChecksumError(
            f"checksum mismatch for {where} (decompressed): expected sha256 {raw_sha256}, got {actual}"
        )
    return data, f"sha256:{actual}"


def _download(name: str, download_dir: str) -> Path:
    import torchvision

    cls = getattr(torchvision.datasets, TORCHVISION[name])
    for train in (True, False):  # torchvision checks the .gz md5s as it downloads
        cls(download_dir, train=train, download=True)
    return Path(download_dir) / TORCHVISION[name] / "raw"


def load(name: str, source: str = "default", download_dir: str = "downloads", **_) -> Dataset:
    folder = _download(name, download_dir) if source == "default" else Path(source)
    if not folder.is_dir():
        raise FileNotFoundError(f"data.source: local folder {folder} does not exist")
    arrays, files = {}, {}
    for stem in STEMS:
        data, dig = read_verified(folder, stem, *DIGESTS[name][stem])
        try:
            arrays[stem] = parse_idx(data, str(folder / stem))
        except ValueError as err:  # its digest matched, so the recorded digest or the parser is wrong
            raise ChecksumError(f"{err} (its digest {dig} matched the recorded one)") from err
        files[stem] = dig
    x_train, y_train = arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"]
    x_test, y_test = arrays["t10k-images-idx3-ubyte"], arrays["t10k-labels-idx1-ubyte"]
    return Dataset(
        name=name,
        x_train=np.ascontiguousarray(x_train[:, None]),
        y_train=y_train.astype(np.int64),
        id_train=np.arange(len(y_train), dtype=np.int64),
        x_test=np.ascontiguousarray(x_test[:, None]),
        y_test=y_test.astype(np.int64),
        id_test=np.arange(len(y_test), dtype=np.int64),
        num_classes=10,
        scale=255.0,
        files=files,
    )
