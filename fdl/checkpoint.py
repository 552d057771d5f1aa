"""Checkpoints: params, optimizer state, PRNG key data and position in one ``.npz`` file (no pickle).

Each leaf is stored under its path (``params/0/W``, ``opt_state/1/trace/0/W``, ...) and restored *into the
structure of* freshly initialised params and optimizer state, so a file from another model is refused. Files
are written atomically. :func:`save_params` / :func:`load_params` store the params alone, for inference.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import jax
import numpy as np

from ._io import atomic_write

FORMAT = "fdl-checkpoint-1"
PARAMS_FORMAT = "fdl-params-1"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: missing, truncated, not a checkpoint, or of another model.

    A ``ValueError``; the message names the file and, for another model, the first leaf that differs.
    """


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
      path: the file to write (conventionally ``*.npz``); its folder is created if needed.
      params: a pytree of arrays.
      opt_state: the optimizer state, a pytree of arrays.
      key: the run's PRNG key (a typed ``jax.random.key``).
      epoch: the position reached, in completed epochs.
      step: steps into the next epoch.
      extra: JSON-serialisable metadata (e.g. the history so far) plus optional pytrees under
        ``extra["trees"]`` (e.g. the best params for early stopping).

    Raises:
      TypeError: ``extra`` (without ``"trees"``) is not JSON-serialisable (from ``json.dumps``).
      OSError: the folder or the file cannot be written (a previous checkpoint at ``path`` is kept).
    """
    path = Path(path)
    extra = dict(extra or {})
    trees = extra.pop("trees", {})
    arrays = {**_flatten("params", params), **_flatten("opt_state", opt_state)}
    for name, tree in trees.items():
        arrays.update(_flatten(f"trees/{name}", tree))
    arrays["key"] = np.asarray(jax.random.key_data(key))
    meta = {
        "format": FORMAT,
        "epoch": int(epoch),
        "step": int(step),
        "key_impl": str(jax.random.key_impl(key)),
        "trees": sorted(trees),
        "extra": extra,
    }
    arrays["meta"] = np.array(json.dumps(meta))
    with atomic_write(path) as f:
        np.savez(f, **arrays)
    return path


def _unflatten(
    prefix: str,
    like,
    stored: dict[str, np.ndarray],
    path: Path,
    what: str = "checkpoint is of another model or optimizer",
):
    expected = _flatten(prefix, like)
    missing = [k for k in expected if k not in stored]
    unexpected = [k for k in stored if k.startswith(prefix + "/") and k not in expected]
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: {what}: "
            f"{'missing ' + missing[0] if missing else 'unexpected ' + unexpected[0]} "
            f"({len(missing)} missing, {len(unexpected)} unexpected entries)"
        )
    leaves = []
    for name, want in expected.items():
        got = stored[name]
        if got.shape != want.shape or got.dtype != want.dtype:
            raise CheckpointError(
                f"{path}: {what}: {name} is "
                f"{got.dtype}{list(got.shape)} in the file, expected {want.dtype}{list(want.shape)}"
            )
        leaves.append(got)
    return jax.tree_util.tree_structure(like).unflatten(leaves)


def _read(path: Path, fmt: str, what: str) -> tuple[dict, dict[str, np.ndarray]]:
    """The metadata and the arrays of an fdl ``.npz`` file of format ``fmt``; CheckpointError otherwise."""
    if not path.exists():
        raise CheckpointError(f"{path}: no such {what}")
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as f:
            stored = {k: f[k] for k in f.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable fdl {what} (truncated, or another kind of file): {e}") from None
    try:
        meta = json.loads(str(stored.pop("meta")))
        found = meta["format"]
    except Exception:
        raise CheckpointError(f"{path}: not an fdl {what} (no {fmt!r} metadata)") from None
    if found != fmt:
        hint = {
            FORMAT: "a full checkpoint: use fdl.checkpoint.load",
            PARAMS_FORMAT: "params alone: use fdl.checkpoint.load_params",
        }.get(found, "another kind of file")
        raise CheckpointError(f"{path}: format {found!r}, expected {fmt!r} ({hint})")
    return meta, stored


def save_params(path, params) -> Path:
    """Write ``params`` alone (for inference) to ``path`` atomically, as ``.npz`` without pickle; return the path.

    Args:
        path: the file to write (conventionally ``*.npz``); its folder is created if needed.
        params: a pytree of arrays, e.g. what ``fit`` returned.

    Raises:
        OSError: the folder or the file cannot be written (a previous file at ``path`` is kept).
    """
    path = Path(path)
    arrays = _flatten("params", params)
    named = jax.tree_util.tree_map_with_path(lambda p, _: "params" + "".join(f"/{_key_name(k)}" for k in p), params)
    try:
        skeleton = _skeleton(named)
    except TypeError:
        skeleton = None  # a custom pytree node: load_params needs like=
    arrays["meta"] = np.array(json.dumps({"format": PARAMS_FORMAT, "tree": skeleton}))
    with atomic_write(path) as f:
        np.savez(f, **arrays)
    return path


def _skeleton(node):
    """The tree with leaf names for leaves, as JSON: sequences as lists, mappings as objects."""
    if isinstance(node, str) or node is None:
        return node
    if isinstance(node, dict):
        return {str(k): _skeleton(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [_skeleton(v) for v in node]
    raise TypeError(f"no JSON form for {type(node).__name__}")


def _fill(skeleton, stored: dict[str, np.ndarray]):
    if isinstance(skeleton, str):
        return stored[skeleton]
    if isinstance(skeleton, dict):
        return {k: _fill(v, stored) for k, v in skeleton.items()}
    if isinstance(skeleton, list):
        return [_fill(v, stored) for v in skeleton]
    return skeleton


def load_params(path, like=None):
    """Read params written by :func:`save_params`.

    Args:
        path: the ``.npz`` file.
        like: optional params of the same model (e.g. ``model.init(key, input_shape)``): the result then has
            exactly their tree structure (tuples, named tuples, custom nodes) and jax arrays, and every leaf's
            shape and dtype is checked. Without it, the tree is rebuilt from the file: sequences as lists,
            mappings as dicts with string keys (what :func:`fdl.serial` models use), leaves as numpy arrays.

    Raises:
        CheckpointError: no such file, not readable, a full checkpoint instead of params, a custom pytree
            without ``like=``, or params of another model (naming the first leaf that differs).
    """
    path = Path(path)
    meta, stored = _read(path, PARAMS_FORMAT, "params file")
    if like is not None:
        return jax.tree.map(
            jax.numpy.asarray,
            _unflatten("params", like, stored, path, "params of another model (not the structure of like=)"),
        )
    if meta.get("tree") is None and stored:
        raise CheckpointError(
            f"{path}: the params were saved from a custom pytree; pass like= (params of the same model) to load them"
        )
    return _fill(meta.get("tree"), stored)


def load(path, *, params_like, opt_state_like, trees_like: dict | None = None) -> dict:
    """Read a checkpoint into the structures of ``params_like`` and ``opt_state_like``.

    Args:
      path: the ``.npz`` written by :func:`save`.
      params_like: params of the same model (e.g. freshly initialised); the result has their tree structure.
      opt_state_like: the optimizer state that goes with them (e.g. ``optimizer.init(params_like)``).
      trees_like: ``{name: like}`` for the pytrees saved under ``extra["trees"]``; names the file does not
        hold are left out of the result.

    Returns:
      A dict with ``params``, ``opt_state`` and ``trees`` (numpy arrays in the ``like`` trees' structures),
        ``key`` (a typed PRNG key), ``epoch`` and ``step`` (ints) and ``extra`` (the JSON metadata).

    Raises:
      CheckpointError: a missing, truncated or foreign file, a params-only file, or a leaf missing,
        unexpected, or of another shape or dtype than in the ``like`` trees.
    """
    path = Path(path)
    meta, stored = _read(path, FORMAT, "checkpoint")
    key = jax.random.wrap_key_data(stored.pop("key"), impl=meta["key_impl"])
    trees = {
        name: _unflatten(f"trees/{name}", like, stored, path)
        for name, like in (trees_like or {}).items()
        if name in meta["trees"]
    }
    return {
        "params": _unflatten("params", params_like, stored, path),
        "opt_state": _unflatten("opt_state", opt_state_like, stored, path),
        "key": key,
        "epoch": meta["epoch"],
        "step": meta["step"],
        "extra": meta["extra"],
        "trees": trees,
    }
