"""Small file helpers shared by the loaders: hashing, the shipped-data directory, atomic writes."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
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
        raise ValueError(f"{what}: {path} has SHA-256 {actual}, expected {expected_sha256} "
                         "(see fdl/data/PROVENANCE.md); the file was altered or truncated, reinstall fdl")
    return data


@contextlib.contextmanager
def atomic_write(final_path: Path):
    """Yield an open binary file in ``final_path``'s folder; on success move it onto ``final_path``.

    The temporary name ends in ``.tmp``, so a write cut off midway (crash, full disk, Ctrl-C) never leaves a
    file under the final name; ``os.replace`` makes the switch atomic on POSIX and Windows.
    """
    final_path = Path(final_path)
    final_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_name = str(final_path) + f".{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # unlike mkstemp, honours the umask
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, final_path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
