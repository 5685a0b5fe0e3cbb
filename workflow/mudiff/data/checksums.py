"""Checksums of every downloaded or mirrored file; a mismatch names the file and both digests."""

from __future__ import annotations

from pathlib import Path

from mudiff.io import digest  # noqa: F401  (the one file hash, re-exported for the loaders)


class ChecksumError(ValueError):
    """A file whose digest is not the recorded one."""


def verify(name: str, data: bytes | str | Path, expected: str, algorithm: str = "md5") -> str:
    """Return the digest of `data`, or raise ChecksumError naming `name`, expected and actual."""
    actual = digest(data, algorithm)
    if actual != expected:
        raise ChecksumError(f"checksum mismatch for {name}: expected {algorithm} {expected}, got {actual}")
    return actual
