"""Helpers shared by several test files: each defined here once and imported, never copied.

- :func:`normal`: float64 standard-normal arrays from a seed;
- :func:`snapshot` / :func:`assert_untouched`: a refused call read or wrote no file;
- :func:`conv2d_reference`: a convolution straight from lax, the reference of the hand-written ones;
- ``MNIST_TINY`` / :func:`mnist_tiny_arrays`: the 30 + 10 image stand-in for MNIST (``fixtures/make_mnist_tiny.py``);
- ``TINY_X``, ``TINY_Y``, ``TINY_MODEL``, :func:`fit_tiny`: the small regression the bad-input tests train;
- :func:`regression_data`, ``REGRESSION_MODEL``, :func:`fit_regression`: the small regression of the trainer's tests.
"""

from __future__ import annotations

import functools
import gzip
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from fdl import dense, fit, serial
from fdl.data import _mnist_sources as sources
from fdl.data.idx import parse_idx
from fdl.losses import mean_squared_error
from fdl.optim import sgd
from fdl.train import Checkpoint

FIXTURES = Path(__file__).resolve().parent / "fixtures"
MNIST_TINY = FIXTURES / "mnist_tiny"


def normal(seed, shape, scale=1.0):
    return scale * jax.random.normal(jax.random.key(seed), shape, jnp.float64)


# ---------------------------------------------------------------- files: a refusal reads or writes nothing


def snapshot(folder: Path) -> dict:
    """Every file under ``folder`` and its bytes."""
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_untouched(folder: Path, before: dict, gone=()) -> None:
    """The files of ``before`` are still there, byte for byte (except ``gone``), and nothing else appeared."""
    after = snapshot(folder)
    expected = {k: v for k, v in before.items() if k not in gone}
    assert set(after) == set(expected), f"files changed: before {sorted(before)}, after {sorted(after)}"
    for name, data in expected.items():
        assert after[name] == data, f"{name} was modified"


def assert_refused_before_writing(folder: Path, call, message: str) -> None:
    """``call(path)`` raises ValueError matching ``message`` before anything is read or written: an existing
    checkpoint at ``path`` (in ``folder``) is left as it was (the bad-hyperparameter tables of each module)."""
    path = folder / "run.npz"
    path.write_bytes(b"an existing checkpoint")
    before = snapshot(folder)
    with pytest.raises(ValueError, match=message):
        call(path)
    assert_untouched(folder, before)


# ---------------------------------------------------------------- references


def conv2d_reference(x, W):
    """The same convolution from lax directly: kernel transposed to (out, in, k, k), default NCHW/OIHW."""
    k = W.shape[2]
    return lax.conv_general_dilated(x, jnp.transpose(W, (1, 0, 2, 3)), (1, 1), [(k // 2, k // 2)] * 2)


@functools.cache
def mnist_tiny_arrays() -> tuple:
    """``(train_images, train_labels, test_images, test_labels)`` of ``fixtures/mnist_tiny``, parsed from its .gz."""
    return tuple(
        parse_idx(gzip.decompress((MNIST_TINY / (sources.FILE_NAMES[k] + ".gz")).read_bytes())) for k in sources.KEYS
    )


# ---------------------------------------------------------------- the bad-input tests' small regression

_RNG = np.random.RandomState(0)
TINY_X = _RNG.randn(64, 4)
TINY_Y = np.tanh(TINY_X @ _RNG.randn(4, 1))
TINY_MODEL = serial(dense(5, "tanh"), dense(1))


def fit_tiny(X=TINY_X, Y=TINY_Y, *args, checkpoint=None, every=1, resume=False, **kw):
    """``fit`` of ``TINY_MODEL`` (2 epochs, batches of 16, SGD 0.01), with a Checkpoint plugin if ``checkpoint``."""
    options = dict(epochs=2, batch_size=16, seed=0, log=None)
    options.update(kw)
    if checkpoint is not None:
        options["plugins"] = [Checkpoint(checkpoint, every=every, resume=resume)]
    return fit(TINY_MODEL, mean_squared_error, sgd(0.01), X, Y, *args, **options)


# ---------------------------------------------------------------- the trainer's tests' small regression


def regression_data(n=103, features=4, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, features)
    y = np.tanh(X @ rng.randn(features, 1)) + 0.1 * rng.randn(n, 1)
    return X[:80], y[:80], X[80:], y[80:]


REGRESSION_MODEL = serial(dense(6, "sigmoid", keep_prob=0.9), dense(1))


def fit_regression(**kw):
    """``fit`` of ``REGRESSION_MODEL`` on :func:`regression_data` (6 epochs, evaluated every 2, batches of 16)."""
    args = dict(epochs=6, eval_every=2, batch_size=16, seed=3, log=None)
    args.update(kw)
    return fit(REGRESSION_MODEL, mean_squared_error, sgd(0.05), *regression_data(), **args)
