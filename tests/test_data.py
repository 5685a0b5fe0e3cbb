"""Data loaders: checksums, CIFAR batch parsing, idx parsing, digits split."""

from __future__ import annotations

import gzip
import hashlib
import pickle
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from mudiff.data import cifar, digits, idx
from mudiff.data.checksums import ChecksumError, digest, verify

# ----------------------------------------------------------------------------- checksums


def test_verify_match_returns_digest(tmp_path):
    f = tmp_path / "a.bin"
    f.write_bytes(b"hello")
    md5 = "5d41402abc4b2a76b9719d911017c592"  # md5("hello"), a well-known value
    assert verify("a.bin", f, md5) == md5
    assert verify("bytes", b"hello", md5) == md5
    sha = hashlib.sha256(b"hello").hexdigest()
    assert verify("a.bin", f, sha, "sha256") == sha


def test_verify_mismatch_names_file_and_both_digests(tmp_path):
    f = tmp_path / "weights.bin"
    f.write_bytes(b"hello")
    wrong = "0" * 32
    with pytest.raises(ChecksumError) as err:
        verify("weights.bin", f, wrong)
    msg = str(err.value)
    assert "weights.bin" in msg and wrong in msg and "5d41402abc4b2a76b9719d911017c592" in msg


# ----------------------------------------------------------------------------- CIFAR


def _write_batch(path: Path, data: np.ndarray, labels: dict) -> None:
    entry = {b"batch_label": b"fake", b"data": data, **labels}
    with open(path, "wb") as fh:
        pickle.dump(entry, fh, protocol=2)


def _pattern(n: int, offset: int) -> np.ndarray:
    # row i, column j holds (j + i + offset) % 256
    j = np.arange(3072)[None, :]
    i = np.arange(n)[:, None]
    return ((j + i + offset) % 256).astype(np.uint8)


def test_parse_batches_cifar10_layout_and_order(tmp_path):
    a, b = _pattern(2, 0), _pattern(3, 100)
    # a distinctive pixel: image 1 of batch b, green channel (c=1), row 2, column 3
    # -> flat index c*1024 + row*32 + col = 1024 + 64 + 3 = 1091
    b[1, 1091] = 255
    _write_batch(tmp_path / "b1", a, {b"labels": [3, 7]})
    _write_batch(tmp_path / "b2", b, {b"labels": [0, 9, 1]})
    x, y = cifar.parse_batches([tmp_path / "b1", tmp_path / "b2"], b"labels")
    assert x.shape == (5, 3, 32, 32) and x.dtype == np.uint8
    assert y.dtype == np.int64 and y.tolist() == [3, 7, 0, 9, 1]
    assert x[3, 1, 2, 3] == 255  # batch b, image 1 is overall image 2 + 1 = 3
    # channel-major then row-major: pixel (c, r, col) of image i in batch a = (c*1024 + r*32 + col + i) % 256
    assert x[1, 2, 5, 7] == (2 * 1024 + 5 * 32 + 7 + 1) % 256
    assert x[0, 0, 31, 31] == (1023 + 0) % 256
    assert x[4, 0, 0, 1] == (1 + 2 + 100) % 256  # image 2 of batch b
    np.testing.assert_array_equal(x[0].reshape(-1), a[0])


def test_parse_batches_cifar100_fine_labels(tmp_path):
    _write_batch(tmp_path / "train", _pattern(2, 5), {b"fine_labels": [42, 99], b"coarse_labels": [1, 19]})
    x, y = cifar.parse_batches([tmp_path / "train"], b"fine_labels")
    assert x.shape == (2, 3, 32, 32)
    assert y.tolist() == [42, 99]


def test_parse_batches_refuses_bad_shapes(tmp_path):
    _write_batch(tmp_path / "b", np.zeros((2, 3000), dtype=np.uint8), {b"labels": [0, 1]})
    with pytest.raises(ValueError, match=r"expected \(N, 3072\)"):
        cifar.parse_batches([tmp_path / "b"], b"labels")
    _write_batch(tmp_path / "c", np.zeros((2, 3072), dtype=np.uint8), {b"labels": [0]})
    with pytest.raises(ValueError, match="2 images but 1 labels"):
        cifar.parse_batches([tmp_path / "c"], b"labels")


def _snapshot(root: Path) -> dict:
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() else None for p in sorted(root.rglob("*"))
    }


def test_cifar_load_refuses_fake_files_and_writes_nothing(tmp_path, monkeypatch):
    src = tmp_path / "src"
    folder = src / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for k, (name, _) in enumerate(cifar.SPECS["cifar10"]["train"] + cifar.SPECS["cifar10"]["test"]):
        _write_batch(folder / name, _pattern(2, k), {b"labels": [0, 1]})
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # the default download_dir "downloads" would land here
    before = _snapshot(tmp_path)
    with pytest.raises(ChecksumError) as err:
        cifar.load("cifar10", source=str(src))
    msg = str(err.value)
    assert "data_batch_1" in msg
    assert "c99cafc152244af753f735de768cd75f" in msg  # the official md5 it expected
    assert digest(folder / "data_batch_1") in msg  # and what it got
    assert _snapshot(tmp_path) == before


def test_cifar_load_missing_local_folder(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        cifar.load("cifar10", source=str(missing), download_dir=str(tmp_path / "dl"))
    assert not (tmp_path / "dl").exists()


# ----------------------------------------------------------------------------- idx


def _idx(array: np.ndarray) -> bytes:
    return (
        bytes([0, 0, 0x08, array.ndim])
        + struct.pack(f">{array.ndim}i", *array.shape)
        + array.astype(np.uint8).tobytes()
    )


def test_parse_idx_round_trip():
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    raw = _idx(a)
    assert raw[:8] == b"\x00\x00\x08\x03\x00\x00\x00\x02"  # magic, then big-endian dim 2
    out = idx.parse_idx(raw)
    assert out.shape == (2, 3, 4) and out.dtype == np.uint8
    assert out[1, 2, 3] == 23
    np.testing.assert_array_equal(out, a)
    labels = idx.parse_idx(_idx(np.array([5, 0, 9], dtype=np.uint8)))
    assert labels.tolist() == [5, 0, 9]


def test_parse_idx_dims_above_255_are_big_endian():
    a = np.zeros((300, 1), dtype=np.uint8)
    a[299, 0] = 7
    out = idx.parse_idx(_idx(a))
    assert out.shape == (300, 1) and out[299, 0] == 7


def test_parse_idx_truncated():
    raw = _idx(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
    with pytest.raises(ValueError, match="labels.idx: truncated"):
        idx.parse_idx(raw[:-1], "labels.idx")


def test_parse_idx_bad_magic():
    with pytest.raises(ValueError, match="bad magic 00000d01"):
        idx.parse_idx(b"\x00\x00\x0d\x01\x00\x00\x00\x01\x05")  # 0x0d = float, not uint8


def test_read_verified_gz_mismatch_without_sha256(tmp_path):
    gz = tmp_path / "train-labels-idx1-ubyte.gz"
    gz.write_bytes(gzip.compress(_idx(np.array([1, 2], dtype=np.uint8))))
    with pytest.raises(ChecksumError) as err:
        idx.read_verified(tmp_path, "train-labels-idx1-ubyte", "0" * 32, None)
    msg = str(err.value)
    assert str(gz) in msg and "0" * 32 in msg and digest(gz) in msg


def test_read_verified_accepts_md5_or_decompressed_sha256(tmp_path):
    payload = _idx(np.array([1, 2], dtype=np.uint8))
    gz = tmp_path / "s.gz"
    gz.write_bytes(gzip.compress(payload))
    data, tag = idx.read_verified(tmp_path, "s", digest(gz), None)
    assert data == payload and tag == f"md5:{digest(gz)}"
    sha = hashlib.sha256(payload).hexdigest()
    data, tag = idx.read_verified(tmp_path, "s", "0" * 32, sha)  # a re-compressed .gz
    assert data == payload and tag == f"sha256:{sha}"
    with pytest.raises(ChecksumError, match="s.gz \\(decompressed\\): expected sha256 " + "1" * 64):
        idx.read_verified(tmp_path, "s", "0" * 32, "1" * 64)


def test_read_verified_corrupt_gzip(tmp_path):
    (tmp_path / "s.gz").write_bytes(b"not gzip at all")
    with pytest.raises(ChecksumError, match="corrupt gzip"):
        idx.read_verified(tmp_path, "s", "0" * 32, "1" * 64)


def test_idx_load_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        idx.load("fashion_mnist", source=str(tmp_path))


# ----------------------------------------------------------------------------- digits


@pytest.fixture(scope="module")
def digits_ds():
    return digits.load("digits", test_fraction=0.2, split_seed=0)


def test_digits_split_sizes_and_ids(digits_ds):
    ds = digits_ds
    # 1797 samples; test = ceil(0.2 * 1797) = ceil(359.4) = 360; train = 1437
    assert len(ds.y_train) == 1437 and len(ds.y_test) == 360
    assert ds.x_train.shape == (1437, 1, 8, 8) and ds.x_train.dtype == np.uint8
    assert set(ds.id_train).isdisjoint(ds.id_test)
    assert sorted(np.concatenate([ds.id_train, ds.id_test]).tolist()) == list(range(1797))
    assert ds.num_classes == 10 and ds.scale == 16.0


def test_digits_split_is_stratified(digits_ds):
    from sklearn.datasets import load_digits

    y = load_digits().target
    for c in range(10):
        share = (y == c).mean()
        assert abs((digits_ds.y_test == c).mean() - share) < 0.01
        assert abs((digits_ds.y_train == c).mean() - share) < 0.01


def test_digits_ids_index_load_digits(digits_ds):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    for k in (0, 1, 500, 1436):
        i = digits_ds.id_train[k]
        np.testing.assert_array_equal(digits_ds.x_train[k, 0], bunch.images[i])
        assert digits_ds.y_train[k] == bunch.target[i]
    for k in (0, 359):
        i = digits_ds.id_test[k]
        np.testing.assert_array_equal(digits_ds.x_test[k, 0], bunch.images[i])
        assert digits_ds.y_test[k] == bunch.target[i]


def test_digits_split_seed(digits_ds):
    same = digits.load("digits", split_seed=0)
    np.testing.assert_array_equal(same.id_test, digits_ds.id_test)
    other = digits.load("digits", split_seed=1)
    assert set(other.id_test) != set(digits_ds.id_test)


def test_digits_refuses_a_source():
    with pytest.raises(ValueError, match="digits ships inside scikit-learn"):
        digits.load("digits", source="/some/folder")


# ----------------------------------------------------------------------------- train subset (data.train_size)


def _imbalanced(n_per_class=(500, 300, 120, 50, 30, 20), seed=0):
    from mudiff.data import Dataset

    y = np.concatenate([np.full(k, c) for c, k in enumerate(n_per_class)]).astype(np.int64)
    y = np.random.default_rng(seed).permutation(y)
    n = len(y)
    x = (np.arange(n) % 256).astype(np.uint8).reshape(n, 1, 1, 1)
    ids = np.arange(n, dtype=np.int64) * 3 + 5  # source ids that are not row positions
    return Dataset(
        name="toy",
        x_train=x,
        y_train=y,
        id_train=ids,
        x_test=x[:4],
        y_test=y[:4],
        id_test=ids[:4],
        num_classes=len(n_per_class),
        scale=255.0,
    )


@pytest.mark.parametrize("size", [51, 97, 0.25, 0.5, 1019, 1020])  # from 51 on, every share is at least one
def test_train_subset_is_stratified_within_one(size):
    from mudiff.config import subset_size
    from mudiff.data import stratified_subset

    full = _imbalanced()
    sub = stratified_subset(full, size, seed=0)
    n = subset_size(size, len(full.y_train))
    assert len(sub.y_train) == n
    have, got = np.bincount(full.y_train), np.bincount(sub.y_train, minlength=full.num_classes)
    assert np.all(np.abs(got - n * have / have.sum()) <= 1), (got, n * have / have.sum())
    assert np.all(got >= 1)  # every class stays
    np.testing.assert_array_equal(sub.x_test, full.x_test)  # the test set is untouched
    np.testing.assert_array_equal(sub.id_test, full.id_test)


def test_train_subset_keeps_every_class_even_below_its_share():
    from mudiff.data import stratified_counts

    y = np.repeat(np.arange(6), (500, 300, 120, 50, 7, 3))
    for n in (6, 7, 20):  # classes 4 and 5 have shares below one sample: they still get one
        counts = stratified_counts(y, n, 6)
        assert counts.sum() == n and np.all(counts >= 1)
    np.testing.assert_array_equal(stratified_counts(y, 980, 6), [500, 300, 120, 50, 7, 3])


def test_train_subset_keeps_source_ids_and_their_samples():
    from mudiff.data import stratified_subset

    full = _imbalanced()
    sub = stratified_subset(full, 200, seed=3)
    assert set(sub.id_train) <= set(full.id_train) and np.all(np.diff(sub.id_train) > 0)
    row = {int(i): k for k, i in enumerate(full.id_train)}
    for k, i in enumerate(sub.id_train):
        assert (
            sub.y_train[k] == full.y_train[row[int(i)]]
            and sub.x_train[k, 0, 0, 0] == full.x_train[row[int(i)], 0, 0, 0]
        )


def test_train_subset_is_reproducible_per_seed():
    from mudiff.data import stratified_subset

    full = _imbalanced()
    a, b = stratified_subset(full, 200, seed=0), stratified_subset(full, 200, seed=0)
    np.testing.assert_array_equal(a.id_train, b.id_train)
    other = stratified_subset(full, 200, seed=1)
    assert set(other.id_train) != set(a.id_train)
    np.testing.assert_array_equal(
        np.bincount(other.y_train), np.bincount(a.y_train)
    )  # same counts, other samples


def test_train_subset_refuses_fewer_samples_than_classes_or_more_than_train():
    from mudiff.data import stratified_subset

    full = _imbalanced()
    with pytest.raises(ValueError, match="data.train_size"):
        stratified_subset(full, 5, seed=0)
    with pytest.raises(ValueError, match="data.train_size"):
        stratified_subset(full, len(full.y_train) + 1, seed=0)


def test_load_source_applies_the_subset_to_digits_train_only(digits_ds):
    from sklearn.datasets import load_digits

    from mudiff.data import load_source

    sub = load_source(
        "digits", "default", "unused", train_size=300, subset_seed=0, test_fraction=0.2, split_seed=0
    )
    assert len(sub.y_train) == 300 and set(sub.id_train) <= set(digits_ds.id_train)
    np.testing.assert_array_equal(sub.id_test, digits_ds.id_test)  # the test split stays the same
    bunch = load_digits()
    for k in (0, 150, 299):  # ids are indices in load_digits()
        np.testing.assert_array_equal(sub.x_train[k, 0], bunch.images[sub.id_train[k]])
        assert sub.y_train[k] == bunch.target[sub.id_train[k]]
    full = load_source("digits", "default", "unused", train_size=None, test_fraction=0.2, split_seed=0)
    np.testing.assert_array_equal(full.id_train, digits_ds.id_train)  # null = the whole train set


def test_prepare_records_the_subset_in_the_manifest(tmp_path, monkeypatch):
    import json

    from mudiff.config import validate
    from mudiff.stages import prepare_data as prepare

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    data = validate({"name": "test", "data": {"train_size": 0.25, "subset_seed": 7}})["data"]
    out = {"arrays": str(tmp_path / "arrays.npz"), "manifest": str(tmp_path / "manifest.json")}
    prepare.run(
        {
            "rule": "prepare_data",
            "study": "test",
            "wildcards": {},
            "params": {"data": data},
            "output": out,
            "input": {},
        }
    )
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    sub = manifest["train_subset"]
    assert (
        sub["train_size"] == 0.25
        and sub["seed"] == 7
        and sub["n"] == manifest["n_train"] == round(0.25 * 1437)
    )
    assert sum(sub["per_class"]) == sub["n"] and len(sub["per_class"]) == 10
