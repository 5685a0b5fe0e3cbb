"""Reading and writing artifacts: atomic writes, parquet tables, state dicts loaded safely."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # torch is imported where models are read or written: table-only jobs start faster
    import torch


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; it replaces `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(obj: Any, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_table(df: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)


def read_table(path: str | Path) -> pd.DataFrame:
    return pd.read_parquet(path)


def write_arrays(path: str | Path, **arrays: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def read_arrays(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def save_model(model: torch.nn.Module, path: str | Path) -> None:
    import torch

    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


class ModelFileError(ValueError):
    """A model file that is corrupt or does not hold a state dict of tensors."""


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a state dict with `weights_only=True`: no pickled code is ever executed."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for corrupt or unsafe files
        raise ModelFileError(f"{path}: not a loadable state dict ({type(err).__name__}: {err})") from err
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelFileError(f"{path}: holds {type(state).__name__}, not a state dict of tensors")
    return state


def save_checkpoints(states: dict[int, dict[str, torch.Tensor]], path: str | Path) -> None:
    """Several state dicts in one file, flat ('<epoch>/<key>'), so it loads with `weights_only=True`."""
    import torch

    flat = {f"{epoch}/{k}": v.detach().cpu() for epoch, state in states.items() for k, v in state.items()}
    with atomic_path(path) as tmp:
        torch.save(flat, tmp)


def load_checkpoints(path: str | Path) -> dict[int, dict[str, torch.Tensor]]:
    """The state dicts of `save_checkpoints`, by epoch (ascending)."""
    out: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in load_state_dict(path).items():
        epoch, _, name = key.partition("/")
        if not epoch.isdigit() or not name:
            raise ModelFileError(f"{path}: key {key!r} is not '<epoch>/<parameter>'")
        out.setdefault(int(epoch), {})[name] = value
    return dict(sorted(out.items()))
