"""Losses (book ch. 3: MeanSquaredError; ch. 4: SoftmaxCrossEntropy), as :class:`~fdl.ops.Op` s.

Both return the book's scalar: a sum over examples divided by the number of examples. Their backward is
the gradient of exactly that value with respect to the predictions (and the targets, for completeness).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ._checks import expect_rank, expect_same_shape
from .ops._op import op


def _n_examples(p) -> int:
    return math.prod(p.shape[:-1]) if p.ndim > 1 else p.shape[0]


MSE_OVER = ("batch", "elements")


def _mse_count(p, over: str) -> int:
    if over not in MSE_OVER:
        raise ValueError(f"mean_squared_error: over must be one of {MSE_OVER}, got {over!r}")
    return p.shape[0] if over == "batch" else p.size


def _mse_backward(g, out, p, y, *, over):
    dp = g * 2.0 * (p - y) / _mse_count(p, over)
    return dp, -dp


@op(_mse_backward)
def mean_squared_error(p, y, *, over="batch"):
    """``L = sum((p - y)^2) / batch``; ``dL/dp = 2 (p - y) / batch`` (book: MeanSquaredError).

    p, y: (batch, ...) of the same shape. With one output per example this is the usual MSE; with several
    it is the squared error summed over outputs, averaged over the batch, as the book defines it.
    ``over="elements"`` divides by the number of elements instead (PyTorch's ``MSELoss``, used in ch. 7's
    autoencoder): the mean squared error per pixel.
    """
    expect_same_shape(p, y, "mean_squared_error")
    if p.ndim < 1 or p.shape[0] == 0:
        raise ValueError(f"mean_squared_error: expected a non-empty batch, got shape {p.shape}")
    return jnp.sum((p - y) ** 2) / _mse_count(p, over)


def _softmax_ce_backward(g, out, z, y):
    # L = -sum(y * log softmax(z)) / N. With s = softmax(z): dL/dz = (s * sum_c(y) - y) / N, which is the
    # book's (s - y) / N for one-hot y.
    n = _n_examples(z)
    logp = jax.nn.log_softmax(z, axis=-1)
    dz = g * (jnp.exp(logp) * jnp.sum(y, axis=-1, keepdims=True) - y) / n
    return dz, -g * logp / n


@op(_softmax_ce_backward)
def softmax_cross_entropy(z, y):
    """Categorical cross-entropy of softmax(z) against one-hot (or probability) targets y.

    ``L = -sum(y * log softmax(z)) / N`` over the N rows (all axes but the last, the class axis);
    ``dL/dz = (softmax(z) - y) / N`` for one-hot y (book: SoftmaxCrossEntropy).

    Erratum 1: the book prints a per-class *binary* cross-entropy but returns the gradient above, which
    belongs to this categorical loss. fdl's loss is the one whose gradient it returns, so the book's printed
    "validation losses" are not comparable to fdl's. The log-softmax is computed stably (logits of +/-1e4
    give finite values) instead of clipping probabilities.

    z, y: (..., classes) of the same shape.
    """
    expect_same_shape(z, y, "softmax_cross_entropy", ("logits", "targets"))
    if z.ndim < 2:
        expect_rank(z, 2, "softmax_cross_entropy logits", "(batch, classes)")
    if z.size == 0:
        raise ValueError(f"softmax_cross_entropy: expected a non-empty batch, got shape {tuple(z.shape)}")
    return -jnp.sum(y * jax.nn.log_softmax(z, axis=-1)) / _n_examples(z)


LOSSES = {"mse": mean_squared_error, "mean_squared_error": mean_squared_error,
          "softmax_cross_entropy": softmax_cross_entropy, "cross_entropy": softmax_cross_entropy}


def get_loss(name):
    if not isinstance(name, str):
        return name
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)}") from None
