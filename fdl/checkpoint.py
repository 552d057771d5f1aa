"""Checkpoints: params, optimizer state, PRNG key data and position in one ``.npz`` file (no pickle).

Each leaf of each pytree is stored under its path (``params/0/W``, ``opt_state/1/trace/0/W``, ...); a
checkpoint is restored *into the structure of* freshly initialised params and optimizer state, so a file
from another model or optimizer is refused with a message naming the first leaf that differs. Files are
written atomically (a temporary file beside the target, then a rename): a crash mid-write never leaves a
truncated file under the checkpoint's name, and never destroys the previous checkpoint.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import jax
import numpy as np

FORMAT = "fdl-checkpoint-1"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: missing, truncated, not a checkpoint, or of another model."""


def _flatten(prefix: str, tree) -> dict[str, np.ndarray]:
    out = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        name = prefix + "".join(f"/{_key_name(k)}" for k in path)
        out[name] = np.asarray(leaf)
    return out


def _key_name(k) -> str:
    for attr in ("key", "idx", "name"):
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k)


def save(path, *, params, opt_state, key, epoch: int, step: int = 0, extra: dict | None = None) -> Path:
    """Write a checkpoint to ``path`` atomically and return the path.

    Args:
      params, opt_state: pytrees of arrays.
      key: the run's PRNG key (a typed ``jax.random.key``); its raw data is stored.
      epoch, step: the position reached (completed epochs, steps into the next epoch).
      extra: JSON-serialisable metadata (e.g. the history so far) plus optional pytrees under
        ``extra["trees"]`` (e.g. the best params for early stopping).
    """
    path = Path(path)
    extra = dict(extra or {})
    trees = extra.pop("trees", {})
    arrays = {**_flatten("params", params), **_flatten("opt_state", opt_state)}
    for name, tree in trees.items():
        arrays.update(_flatten(f"trees/{name}", tree))
    arrays["key"] = np.asarray(jax.random.key_data(key))
    meta = {"format": FORMAT, "epoch": int(epoch), "step": int(step), "key_impl": str(jax.random.key_impl(key)),
            "trees": sorted(trees), "extra": extra}
    arrays["meta"] = np.array(json.dumps(meta))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _unflatten(prefix: str, like, stored: dict[str, np.ndarray], path: Path):
    expected = _flatten(prefix, like)
    missing = [k for k in expected if k not in stored]
    unexpected = [k for k in stored if k.startswith(prefix + "/") and k not in expected]
    if missing or unexpected:
        raise CheckpointError(f"{path}: checkpoint is of another model or optimizer: "
                              f"{'missing ' + missing[0] if missing else 'unexpected ' + unexpected[0]} "
                              f"({len(missing)} missing, {len(unexpected)} unexpected entries)")
    leaves = []
    for name, want in expected.items():
        got = stored[name]
        if got.shape != want.shape or got.dtype != want.dtype:
            raise CheckpointError(f"{path}: checkpoint is of another model or optimizer: {name} is "
                                  f"{got.dtype}{list(got.shape)} in the file, expected {want.dtype}{list(want.shape)}")
        leaves.append(got)
    return jax.tree_util.tree_structure(like).unflatten(leaves)


def load(path, *, params_like, opt_state_like, trees_like: dict | None = None) -> dict:
    """Read a checkpoint into the structures of ``params_like`` and ``opt_state_like``.

    Returns a dict with ``params``, ``opt_state``, ``key``, ``epoch``, ``step``, ``extra`` and ``trees``.
    Raises :class:`CheckpointError` (a ValueError) for a missing, truncated or foreign file.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as f:
            stored = {k: f[k] for k in f.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable fdl checkpoint (truncated, or another kind of file): "
                              f"{e}") from None
    try:
        meta = json.loads(str(stored.pop("meta")))
        assert meta["format"] == FORMAT
    except Exception:
        raise CheckpointError(f"{path}: not an fdl checkpoint (no {FORMAT!r} metadata)") from None
    key = jax.random.wrap_key_data(stored.pop("key"), impl=meta["key_impl"])
    trees = {name: _unflatten(f"trees/{name}", like, stored, path) for name, like in (trees_like or {}).items()
             if name in meta["trees"]}
    return {"params": _unflatten("params", params_like, stored, path),
            "opt_state": _unflatten("opt_state", opt_state_like, stored, path),
            "key": key, "epoch": meta["epoch"], "step": meta["step"], "extra": meta["extra"], "trees": trees}
