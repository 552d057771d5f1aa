"""A persistent XLA compilation cache, on by default: a program compiled once is loaded from disk by later
processes. ``import fdl`` calls :func:`enable` (importing fdl compiles nothing).

Where:
  ``$FDL_JAX_CACHE`` if set to a directory, else ``jax/`` under fdl's cache directory (``$FDL_DATA_DIR/jax``,
  else ``~/.cache/fdl/jax``); subprocesses inherit the environment and share it.

Off:
  ``FDL_JAX_CACHE=0`` (or ``off``, ``false``, ``no``, ``none``), or :func:`disable` in a running program.

Left alone:
  a cache directory the user configured in JAX before importing fdl, or JAX's cache turned off
  (``JAX_ENABLE_COMPILATION_CACHE=false``): fdl then changes nothing.

What is cached:
  every executable, however small: fdl sets ``jax_persistent_cache_min_compile_time_secs=0`` and
  ``jax_persistent_cache_min_entry_size_bytes=-1`` (where still at JAX's defaults). JAX keys entries on the
  program, jaxlib, backend, devices, compile options and ``XLA_FLAGS``; after a jax upgrade old entries are
  never read again, and the directory has no size limit: delete it to reclaim the space.

Failures cost time, never a result:
  an unwritable directory leaves the cache off with one warning (logger ``fdl.compile_cache``); a bad entry
  or a full disk makes JAX warn and compile afresh.
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
_ours: str | None = None  # the directory fdl set, so that a later enable()/disable() knows it is fdl's
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
      The directory the cache now uses (the user's own if they configured JAX's), or None when it is off
        (``FDL_JAX_CACHE=0``, JAX's cache off, or an unusable directory, logged). Never raises.
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
            logger.warning(
                "fdl: the compilation cache is off: %s; set %s to a writable directory, or %s=0 to silence this",
                problem,
                ENV_VAR,
                ENV_VAR,
            )
            return None
        for name, default, value in (
            ("jax_persistent_cache_min_compile_time_secs", _JAX_MIN_COMPILE_TIME, 0.0),
            ("jax_persistent_cache_min_entry_size_bytes", _JAX_MIN_ENTRY_SIZE, -1),
        ):
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
