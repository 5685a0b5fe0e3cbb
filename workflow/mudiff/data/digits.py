"""scikit-learn's embedded `digits` (1797 8x8 images, values 0-16): a stratified split by seed."""

from __future__ import annotations

import numpy as np

from mudiff.data import Dataset
from mudiff.data.checksums import digest
from mudiff.data.facts import Facts

SAMPLES = 1797
# No official split: train and test are cut from its 1797 samples by data.test_fraction.
FACTS = {"digits": Facts(classes=10, train_size=SAMPLES, models=("mlp",), scale=1, split=True)}


def load(
    name: str,
    source: str = "default",
    download_dir: str = "",
    test_fraction: float = 0.2,
    split_seed: int = 0,
    **_,
) -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if source != "default":
        raise ValueError(
            f"data.source: digits ships inside scikit-learn; got source {source!r}, use 'default'"
        )
    bunch = load_digits()
    x = bunch.images.astype(np.uint8)[:, None]  # values 0..16 are exact small integers
    y = bunch.target.astype(np.int64)
    ids = np.arange(len(y), dtype=np.int64)
    train, test = train_test_split(ids, test_size=test_fraction, stratify=y, random_state=split_seed)
    train, test = np.sort(train), np.sort(test)
    return Dataset(
        name=name,
        x_train=x[train],
        y_train=y[train],
        id_train=train,
        x_test=x[test],
        y_test=y[test],
        id_test=test,
        num_classes=10,
        scale=16.0,
        files={"sklearn load_digits": digest(x.tobytes() + y.tobytes())},
    )
