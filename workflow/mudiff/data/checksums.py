"""Checksums of every downloaded or mirrored file; a mismatch names the file and both digests."""

from __future__ import annotations

import hashlib
from pathlib import Path


class ChecksumError(ValueError):
    """A file whose digest is not the recorded one."""


def digest(data: bytes | str | Path, algorithm: str = "md5") -> str:
    h = hashlib.new(algorithm)
    if isinstance(data, bytes):
        h.update(data)
    else:
        with open(data, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def verify(name: str, data: bytes | str | Path, expected: str, algorithm: str = "md5") -> str:
    """Return the digest of `data`, or raise ChecksumError naming `name`, expected and actual."""
    actual = digest(data, algorithm)
    if actual != expected:
        raise ChecksumError(f"checksum mismatch for {name}: expected {algorithm} {expected}, got {actual}")
    return actual
