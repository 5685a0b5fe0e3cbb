"""The DVC record of each prepared dataset, and the check every job makes against it.

`data.dvc` holds one DVC output per prepared dataset folder (`data/digits`,
`data/fashion_mnist-n10000-seed0`, ...), each with its own digest, so that `dvc status`,
`dvc checkout` and `dvc push` work per dataset and one study's data never touches another's.
`track_data` writes the dataset's entry (through `dvc add`, which also fills the DVC cache) and
a small per-dataset record next to the folder (`data/<folder>.record.json`): the folder's DVC
digest and the md5 of each of its files. The record is what Snakemake sees: a job that reads a
dataset depends on its record, so it reruns exactly when the dataset's content changes, never
when an identical copy is prepared again.

A job that reads a dataset verifies it first (`verify`): the files' digests against the record,
and the record against `data.dvc`. A mismatch is refused with the file and both digests.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import posixpath
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import yaml

from mudiff.data.checksums import digest

DVC_FILE = "data.dvc"
RECORD_SUFFIX = ".record.json"


class DataMismatch(RuntimeError):
    """The data on disk is not the data its record describes."""


def folder_files(folder: str | Path) -> dict[str, str]:
    """md5 of every file under `folder`, by its posix path relative to it."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {posixpath.join(*p.relative_to(folder).parts): digest(p) for p in files}


def dir_md5(files: dict[str, str]) -> str:
    """The digest DVC gives a folder of these files (dvc_data's Tree.digest): the md5 of the JSON
    list of {md5, relpath}, sorted by path, ending in `.dir`."""
    entries = [{"md5": md5, "relpath": rel} for rel, md5 in sorted(files.items())]
    return hashlib.md5(json.dumps(entries, sort_keys=True).encode("utf-8")).hexdigest() + ".dir"


def record_path(folder: str | Path) -> Path:
    folder = Path(folder)
    return folder.with_name(folder.name + RECORD_SUFFIX)


def _rel(path: str | Path, base: str | Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), Path(base).resolve())).as_posix()


def dvc_entry(folder: str | Path, dvc_file: str | Path = DVC_FILE) -> dict | None:
    """The `outs` entry of `dvc_file` for `folder`, or None."""
    dvc_file = Path(dvc_file)
    if not dvc_file.exists():
        return None
    outs = (yaml.safe_load(dvc_file.read_text()) or {}).get("outs") or []
    want = _rel(folder, dvc_file.parent)
    return next((o for o in outs if posixpath.normpath(str(o.get("path", ""))) == want), None)


@contextlib.contextmanager
def _locked(dvc_file: Path) -> Iterator[None]:
    """One writer of data.dvc at a time (two studies may track their data at once)."""
    lock = dvc_file.with_name("." + dvc_file.name + ".lock")
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _dvc(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "dvc", *args], check=True)


def track(folder: str | Path, dvc_file: str | Path = DVC_FILE) -> dict:
    """`dvc add` the dataset folder into its own entry of `dvc_file`; write and return its record."""
    folder, dvc_file = Path(folder), Path(dvc_file)
    with _locked(dvc_file):
        doc = (yaml.safe_load(dvc_file.read_text()) if dvc_file.exists() else None) or {}
        outs = doc.get("outs") or []
        want = _rel(folder, dvc_file.parent)
        # a record of a folder above this one (the one-record-for-all-data layout) would overlap
        kept = [o for o in outs if not want.startswith(posixpath.normpath(str(o["path"])) + "/")]
        if len(kept) != len(outs):
            print(
                f"{dvc_file}: dropped the record of {[o['path'] for o in outs if o not in kept]}, "
                f"which held every dataset; each dataset now has its own entry"
            )
        if not any(posixpath.normpath(str(o["path"])) == want for o in kept):
            kept.append({"path": want})  # a new dataset: a bare entry, which `dvc add` fills in
        if kept != outs:
            _write_dvc(dvc_file, {**doc, "outs": kept})
        _dvc("add", "--quiet", str(folder))  # DVC updates the dataset's entry in place, and caches it
        entry = dvc_entry(folder, dvc_file)
    files = folder_files(folder)
    if entry is None or entry.get("md5") != dir_md5(files):
        raise DataMismatch(
            f"{dvc_file}: after `dvc add {folder}` its entry is {entry}, "
            f"but the folder's digest is {dir_md5(files)}"
        )
    record = {"path": folder.as_posix(), "dvc_file": dvc_file.as_posix(), "md5": entry["md5"], "files": files}
    from mudiff.io import write_json

    write_json(
        record, record_path(folder), provenance=False
    )  # jobs depend on its content: identical data, same record
    return record


def _write_dvc(dvc_file: Path, doc: dict) -> None:
    from mudiff.io import atomic_path

    with atomic_path(dvc_file) as tmp:
        tmp.write_text(yaml.safe_dump(doc, sort_keys=False))


def verify(record_file: str | Path) -> dict:
    """Check the dataset a job reads against its record and data.dvc; return the record.

    Refuses, naming the file and both digests: a file whose md5 is not the record's (changed after
    it was tracked), a file missing or added, and a record whose digest is not data.dvc's entry
    (data.dvc edited by hand, or another checkout's record)."""
    record = json.loads(Path(record_file).read_text())
    folder = Path(record["path"])
    repair = (
        f"rerun `snakemake --forcerun prepare_data` to prepare it again, or restore the recorded "
        f"version with `dvc checkout {record['dvc_file']}`"
    )
    actual = folder_files(folder) if folder.is_dir() else {}
    for name in sorted(set(record["files"]) | set(actual)):
        want, got = record["files"].get(name), actual.get(name)
        if want != got:
            raise DataMismatch(
                f"{folder / name}: md5 {got or 'missing'}, but {record_file} records "
                f"{want or 'no such file'}; the data changed after it was tracked: {repair}"
            )
    entry = dvc_entry(folder, record["dvc_file"])
    if entry is None or entry.get("md5") != record["md5"]:
        raise DataMismatch(
            f"{record['dvc_file']}: the entry for {folder} records md5 "
            f"{entry.get('md5') if entry else 'nothing'}, but the data there is {record['md5']} "
            f"({record_file}); restore data.dvc from git, or {repair}"
        )
    return record
