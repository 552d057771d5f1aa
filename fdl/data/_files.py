"""Small file helpers shared by the loaders: hashing and the shipped-data directory (atomic writes: fdl._io)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_verified(path: Path, expected_sha256: str, what: str) -> bytes:
    """Read a shipped file and check its SHA-256; a mismatch means the file was altered or truncated."""
    if not path.is_file():
        raise FileNotFoundError(f"{what}: shipped data file {path} is missing; reinstall fdl")
    data = path.read_bytes()
    actual = sha256_bytes(data)
    if actual != expected_sha256:
        raise ValueError(
            f"{what}: {path} has SHA-256 {actual}, expected {expected_sha256} "
            "(see fdl/data/PROVENANCE.md); the file was altered or truncated, reinstall fdl"
        )
    return data
