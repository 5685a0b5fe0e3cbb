"""Reading and writing artifacts: atomic writes, parquet tables, state dicts loaded safely.

Every output is written atomically (`atomic_path`) with the mode an ordinary `open()` gives under
the process umask (0o666 & ~umask: 0644 under umask 022), so that a group sharing a results folder
reads it. Sample-id columns are read with `read_ids`, which refuses nulls and non-integers by row.

Every JSON object and parquet table a pipeline job writes records the id of the job's MLflow run
(`RUN_ID_KEY`: a key of the JSON object, a key of the parquet schema's metadata, which pandas
leaves out of the frame); `run_id_of` reads it back. `mudiff.tracking.job_run` sets the run
(`current_run`). Prepared data is the exception (`provenance=False`): it is content-addressed by
DVC, and a copy prepared again must be byte for byte the same.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # torch is imported where models are read or written: table-only jobs start faster
    import torch


def _umask_by_setting() -> int:
    # os.umask can only be read by setting it, process-wide: done once, at import. A file that another
    # thread creates in that instant gets the stricter 0o077 mask, never a looser one.
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


_UMASK_AT_IMPORT = _umask_by_setting()

TEMP_SUFFIX = ".tmp"  # of `atomic_path`'s temporary files, which are never outputs


def digest(data: bytes | str | Path, algorithm: str = "md5") -> str:
    """The hex digest of bytes, or of a file's content read in blocks."""
    h = hashlib.new(algorithm)
    if isinstance(data, bytes):
        h.update(data)
    else:
        with open(data, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def array_digest(array: np.ndarray) -> str:
    """The sha256 of an array's dtype, shape and values (the same for equal arrays, whatever their layout)."""
    a = np.ascontiguousarray(array)
    return digest(f"{a.dtype.str}{a.shape}".encode() + a.tobytes(), "sha256")


def is_temporary(path: Path) -> bool:
    """A file `atomic_path` is still writing (or left behind by a killed job)."""
    return path.name.startswith(".") and path.name.endswith(TEMP_SUFFIX)


RUN_ID_KEY = "mlflow_run_id"
_RUN: dict[str, str] = {}  # the MLflow run of the job writing outputs, while it runs


@contextlib.contextmanager
def current_run(run_id: str) -> Iterator[None]:
    """Within the block, every JSON object and table written records `run_id` (see the module's doc)."""
    previous = dict(_RUN)
    _RUN.clear()
    _RUN["run_id"] = run_id
    try:
        yield
    finally:
        _RUN.clear()
        _RUN.update(previous)


def run_id_of(path: str | Path) -> str | None:
    """The MLflow run id a JSON or parquet output records, or None (another kind of file, or none recorded)."""
    path = Path(path)
    try:
        if path.suffix == ".json":
            obj = json.loads(path.read_text())
            return obj.get(RUN_ID_KEY) if isinstance(obj, dict) else None
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            meta = pq.read_schema(path).metadata or {}
            value = meta.get(RUN_ID_KEY.encode())
            return value.decode() if value else None
    except (OSError, ValueError):
        return None
    return None


def current_umask() -> int:
    """The process umask: read from /proc/self/status on Linux (thread-safe, follows later changes),
    else the value read once when this module was imported."""
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/self/status") as fh:
                for line in fh:
                    if line.startswith("Umask:"):
                        return int(line.split()[1], 8)
        except (OSError, ValueError, IndexError):
            pass
    return _UMASK_AT_IMPORT


def file_mode() -> int:
    """The mode `open(path, "w")` gives a new file: 0o666 less the umask."""
    return 0o666 & ~current_umask()


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; it replaces `path` only if the block succeeds.

    The file gets the umask's ordinary mode (`file_mode`), not mkstemp's private 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, file_mode())  # the block may have rewritten tmp: set the mode of what it left
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(obj: Any, path: str | Path, provenance: bool = True) -> None:
    """`obj` as indented JSON; an object (dict) records the current run's id (RUN_ID_KEY) unless `provenance`
    is False."""
    if provenance and _RUN and isinstance(obj, dict):
        obj = {**obj, RUN_ID_KEY: _RUN["run_id"]}
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


def write_table(df: pd.DataFrame, path: str | Path, provenance: bool = True) -> None:
    """`df` as parquet (no index); its schema's metadata records the current run's id (RUN_ID_KEY)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    if provenance and _RUN:
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), RUN_ID_KEY.encode(): _RUN["run_id"].encode()}
        )
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_table(path: str | Path) -> pd.DataFrame:
    return pd.read_parquet(path)


class IdError(ValueError):
    """A sample-id column with nulls or values that are not integers."""


def check_ids(values: Any, name: str = "ids", column: str = "id") -> np.ndarray:
    """`values` (a column or array of sample ids) as int64, or IdError naming `name`, the column and
    the bad rows (0-based positions) and values. Nothing is cast before it is checked: a NaN never
    becomes int64's minimum."""
    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values))
    series = series.reset_index(drop=True)

    def refuse(bad: np.ndarray, what: str) -> None:
        rows = np.flatnonzero(bad)
        shown = ", ".join(f"row {r} = {_plain(series.iloc[r])!r}" for r in rows[:5])
        more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
        raise IdError(
            f"{name}: column {column!r}: {len(rows)} of {len(series)} rows hold {what}: {shown}{more}; "
            "sample ids must be non-null integers"
        )

    null = series.isna().to_numpy()
    if null.any():
        refuse(null, "null ids")
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        refuse(np.ones(len(series), dtype=bool), "booleans")
    if pd.api.types.is_integer_dtype(dtype):
        if pd.api.types.is_unsigned_integer_dtype(dtype):
            over = series.to_numpy(dtype=np.uint64) > np.iinfo(np.int64).max
            if over.any():
                refuse(over, "ids beyond int64")
        return series.to_numpy(dtype=np.int64)
    if pd.api.types.is_float_dtype(
        dtype
    ):  # integral floats (a column upcast on the way) are exact below 2**53
        v = series.to_numpy(dtype=np.float64)
        bad = ~np.isfinite(v) | (np.abs(v) >= 2.0**53)
        bad[~bad] = v[~bad] != np.floor(v[~bad])
        if bad.any():
            refuse(bad, "non-integer ids")
        return v.astype(np.int64)
    # object or string columns: only Python/numpy integers within int64 pass
    integral = np.array(
        [isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)) for x in series], dtype=bool
    )
    if not integral.all():
        refuse(~integral, f"values that are not integers (dtype {dtype})")
    over = np.array([not -(2**63) <= int(x) < 2**63 for x in series], dtype=bool)
    if over.any():
        refuse(over, "ids beyond int64")
    return series.to_numpy(dtype=np.int64)


def _plain(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x


def read_ids(path: str | Path, column: str = "id") -> np.ndarray:
    """The sample ids of a table (a forget set's ids.parquet), checked by `check_ids`, in file order."""
    table = read_table(path)
    if column not in table.columns:
        raise IdError(f"{path}: no column {column!r} (it has {list(table.columns)})")
    return check_ids(table[column], str(path), column)


def write_arrays(path: str | Path, **arrays: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


class ArrayFileError(ValueError):
    """An .npz file that is corrupt, truncated or not an archive of plain arrays."""


def read_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Every array of an .npz file (never unpickling), or ArrayFileError naming the file."""
    try:
        f = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except Exception as err:  # numpy/zipfile raise several types (one of them suggests allow_pickle)
        raise ArrayFileError(_unreadable(path, err)) from err
    if not isinstance(f, np.lib.npyio.NpzFile):
        raise ArrayFileError(
            _unreadable(path, f"holds one {type(f).__name__}, not an .npz archive of named arrays")
        )
    try:
        with f:
            return {k: f[k] for k in f.files}  # reads (and CRC-checks) every member here
    except Exception as err:
        raise ArrayFileError(_unreadable(path, err)) from err


def _unreadable(path: str | Path, why: Exception | str) -> str:
    if isinstance(why, Exception):
        if "pickle" not in str(why):
            why = f"{type(why).__name__}: {why}"
        elif _starts_with(path, b"PK"):  # a zip: a member is an object array
            why = "it holds an object array, which only unpickling could load, and pickles are never loaded"
        else:  # numpy's last guess for bytes that are neither a zip nor an .npy is a pickle
            why = "neither a zip archive nor an .npy array: garbage, or cut short before its first entry"
    if Path(path).name == "arrays.npz":
        return (
            f"{path}: not a readable prepared array file ({why}); rerun `snakemake --forcerun prepare_data`, "
            "or `dvc checkout` where the prepared data is tracked by DVC"
        )
    return f"{path}: not a readable array file ({why}); rerun the rule that writes it (`snakemake --forcerun <rule>`)"


def _starts_with(path: str | Path, magic: bytes) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(len(magic)) == magic
    except OSError:
        return False


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
