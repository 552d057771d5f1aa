"""Atomic file writes, shared by the data cache, checkpoints and experiment results."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path


@contextlib.contextmanager
def atomic_write(final_path: str | os.PathLike):
    """Yield an open binary file in ``final_path``'s folder; on success move it onto ``final_path``.

    The parent folder is created if needed; a write cut off midway leaves neither a partial file under the
    final name nor a damaged previous one (``os.replace``).
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


def write_json_atomic(path: str | os.PathLike, data) -> None:
    """Write ``data`` as indented JSON (UTF-8) to ``path`` with :func:`atomic_write`."""
    with atomic_write(path) as fh:
        fh.write((json.dumps(data, indent=2) + "\n").encode("utf-8"))
