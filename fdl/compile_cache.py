"""A persistent XLA compilation cache, on by default: a program compiled once is loaded from disk by every later
process (a chapter's second run, each script of ``fdl reproduce``, a notebook's kernel, a user's own ``fit``).

``import fdl`` calls :func:`enable` (importing fdl compiles nothing), so everything that imports fdl uses the cache
from its first compile on.

Where:
  ``$FDL_JAX_CACHE`` if set to a directory, else ``jax/`` under fdl's cache directory: ``$FDL_DATA_DIR/jax``,
  else ``~/.cache/fdl/jax`` (the same place as the MNIST download, :func:`fdl.data.mnist.default_cache_dir`).
  The subprocesses of ``fdl reproduce`` / ``fdl run`` inherit the environment and so share it.

Off:
  ``FDL_JAX_CACHE=0`` (or ``off``, ``false``, ``no``, ``none``), or :func:`disable` in a running program.

Left alone:
  JAX's own configuration. If the user set a cache directory (``JAX_COMPILATION_CACHE_DIR`` or
  ``jax.config.update("jax_compilation_cache_dir", ...)``) before importing fdl, or turned JAX's cache off
  (``JAX_ENABLE_COMPILATION_CACHE=false``), fdl changes nothing, not even the thresholds below.

What is cached:
  every XLA executable this process compiles (jitted training chunks, evaluation, initialisation, eager ops),
  however small or quick to compile: fdl sets ``jax_persistent_cache_min_compile_time_secs=0`` and
  ``jax_persistent_cache_min_entry_size_bytes=-1`` (unless they were changed from JAX's defaults). Programs with
  host callbacks (``jax.debug.print``) are not written (JAX's rule). JAX keys each entry on the program's
  StableHLO, the jaxlib version, the backend and its version, the device topology, the compile options and
  ``XLA_FLAGS`` (and, through the GPU autotuning cache JAX keeps inside it, the directory's own path: a copied or
  moved cache starts cold). After a jax upgrade old entries are never read again: delete the directory to reclaim
  the space (it has no size limit). XLA:CPU also refuses, at load, an entry compiled for other CPU features.

When it goes wrong it only costs time, never a result:
  a directory that cannot be created or written (read-only, a file in its place) leaves the cache off with one
  logged warning (logger ``fdl.compile_cache``); an unreadable, truncated or garbage entry, or a full disk, makes
  JAX warn ("Error reading/writing persistent compilation cache entry ...") and compile afresh (entries are
  compressed: zlib's checksum, or zstandard's frame when it is installed, catches a cut or garbled one). JAX never
  rewrites an entry it finds, so a bad one warns in every run until the directory is deleted.

Timing: JAX (0.10) opens its cache at the first compile that finds a directory set, so :func:`enable` works also
after some compiles; when it changes a directory JAX already opened it calls JAX's ``reset_cache()``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import jax
from jax.experimental.compilation_cache import compilation_cache as _jax_cache

from fdl.data.mnist import default_cache_dir

ENV_VAR = "FDL_JAX_CACHE"
OFF = frozenset({"0", "off", "false", "no", "none"})
SUBDIR = "jax"
# JAX's defaults for the two thresholds; fdl lowers them only where they are still at these values
_JAX_MIN_COMPILE_TIME, _JAX_MIN_ENTRY_SIZE = 1.0, 0

logger = logging.getLogger(__name__)
_ours: str | None = None       # the directory fdl set, so that a later enable()/disable() knows it is fdl's
_saved: dict[str, object] = {}  # the thresholds as they were before fdl changed them


def default_dir() -> Path:
    """``$FDL_DATA_DIR/jax``, else ``~/.cache/fdl/jax`` (``$FDL_JAX_CACHE`` is read by :func:`enable`)."""
    return default_cache_dir() / SUBDIR


def cache_dir() -> Path | None:
    """The directory JAX's persistent cache uses in this process (fdl's or the user's), or None when it is off."""
    path = jax.config.jax_compilation_cache_dir
    return Path(path) if path and jax.config.jax_enable_compilation_cache else None


def _problem(path: Path) -> str | None:
    """Why ``path`` cannot hold the cache, or None when it can (created if missing)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return f"cannot create {path} ({type(e).__name__}: {e.strerror or e})"
    if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        return f"{path} is not writable"
    return None


def enable(path: str | os.PathLike | None = None) -> Path | None:
    """Turn on JAX's persistent compilation cache in fdl's directory; ``import fdl`` calls this.

    Args:
      path: the directory; default ``$FDL_JAX_CACHE``, else :func:`default_dir`. Given explicitly, it replaces
        whatever directory JAX was using.

    Returns:
      The directory the cache now uses (the user's own one if they configured JAX's cache), or None when it is
      off: ``FDL_JAX_CACHE=0``, JAX's cache switched off, or a directory that cannot be created or written (a
      warning is logged). Never raises: a cache is an optimisation.
    """
    global _ours
    try:
        current = jax.config.jax_compilation_cache_dir
        if path is None:
            setting = os.environ.get(ENV_VAR, "").strip()
            if setting.lower() in OFF:
                return None
            if current and current != _ours:
                return cache_dir()  # the user's own cache: theirs to configure
            if not jax.config.jax_enable_compilation_cache:
                return None
            path = Path(setting).expanduser() if setting else default_dir()
        path = Path(path).expanduser().absolute()
        problem = _problem(path)
        if problem:
            logger.warning("fdl: the compilation cache is off: %s; set %s to a writable directory, or %s=0 to "
                           "silence this", problem, ENV_VAR, ENV_VAR)
            return None
        for name, default, value in (("jax_persistent_cache_min_compile_time_secs", _JAX_MIN_COMPILE_TIME, 0.0),
                                     ("jax_persistent_cache_min_entry_size_bytes", _JAX_MIN_ENTRY_SIZE, -1)):
            if getattr(jax.config, name) == default:
                _saved.setdefault(name, default)
                jax.config.update(name, value)
        if current != str(path):
            jax.config.update("jax_compilation_cache_dir", str(path))
            _jax_cache.reset_cache()  # drop a cache JAX already opened elsewhere; the next compile opens this one
        _ours = str(path)
        return cache_dir()
    except Exception as e:  # never let the cache stop a run
        logger.warning("fdl: the compilation cache is off: %s: %s", type(e).__name__, e)
        return None


def disable() -> None:
    """Turn off the cache :func:`enable` turned on (a cache the user configured is theirs to turn off)."""
    global _ours
    if _ours is None or jax.config.jax_compilation_cache_dir != _ours:
        _ours = None
        return
    jax.config.update("jax_compilation_cache_dir", None)
    for name, value in _saved.items():
        jax.config.update(name, value)
    _saved.clear()
    _jax_cache.reset_cache()
    _ours = None
