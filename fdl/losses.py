"""Losses (book ch. 3: MeanSquaredError; ch. 4: SoftmaxCrossEntropy), as :class:`~fdl.ops.Op` s.

Both return the book's scalar, a sum over examples divided by the number of examples, and take gradients
of exactly that value.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from ._checks import expect_rank, expect_same_shape, shape_of
from .ops._op import Op, op


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
    """``L = sum((p - y)^2) / batch``; ``dL/dp = 2 (p - y) / batch`` (book ch. 3: MeanSquaredError).

    p, y: (batch, ...) of the same shape; with several outputs the squared error is summed over them, as the
    book defines it. ``over="elements"`` divides by the number of elements instead (PyTorch's ``MSELoss``,
    ch. 7's autoencoder). Returns a scalar in the promoted dtype.

    Raises:
      ValueError: shapes that differ (e.g. (N, 1) against (N,)), a scalar or empty batch, or an unknown ``over``.

    Examples:
        >>> import jax.numpy as jnp
        >>> float(mean_squared_error(jnp.array([[1.0], [3.0]]), jnp.array([[0.0], [0.0]])))  # (1 + 9) / 2
        5.0
    """
    if shape_of(p) != shape_of(y):
        raise ValueError(
            f"mean_squared_error: predictions and targets must have the same shape, got {shape_of(p)} "
            f"and {shape_of(y)}{_regression_targets_hint(shape_of(p)[1:], y)}"
        )
    if p.ndim < 1 or p.size == 0:
        raise ValueError(
            f"mean_squared_error: expected a non-empty batch, got shape {shape_of(p)}; an empty batch has no mean"
        )
    return jnp.sum((p - y) ** 2) / _mse_count(p, over)


def _regression_targets_hint(outputs: tuple, y) -> str:
    """A message tail saying how to reshape (and cast) targets ``y`` that hold one value per output."""
    y_shape = shape_of(y)
    if not y_shape or math.prod(y_shape[1:]) != math.prod(outputs):
        return ""
    reshape = f"y.reshape(-1, {', '.join(map(str, outputs))})" if outputs else "y.reshape(-1)"
    hint = f"; reshape the targets to {(y_shape[0], *outputs)}: {reshape}"
    if jnp.issubdtype(jnp.result_type(y), jnp.integer):
        hint += (
            ".astype('float32') (integer targets are regression values to mean_squared_error; for class "
            "labels use softmax_cross_entropy with one output per class)"
        )
    return hint


def _log_softmax(z):
    """``log softmax(z)`` over the last axis, and which rows hold a ``+inf`` logit.

    A row with ``+inf`` logits shares its probability among them (gradient 0, in both modes); a row of only
    ``-inf`` logits is ``-inf``, not NaN; a NaN logit makes its row NaN.
    """
    top = jnp.max(z, axis=-1, keepdims=True)
    saturated = jnp.isposinf(top)
    shifted = jnp.where(
        saturated,
        jnp.where(jnp.isposinf(z), 0.0, -jnp.inf),
        z - jax.lax.stop_gradient(jnp.where(jnp.isfinite(top), top, 0.0)),
    )
    norm = jnp.sum(jnp.exp(shifted), axis=-1, keepdims=True)
    # norm is 0 only on a row of -inf logits (log 1 = 0 keeps them -inf); a NaN norm stays NaN for the whole row.
    return shifted - jnp.log(jnp.where(norm == 0, 1.0, norm)), saturated


def _masked(y, logp):
    """``logp`` with 0 where the target is 0 and ``logp`` is ``-inf``: ``0 * log 0 = 0`` for a masked class."""
    return jnp.where((y == 0) & jnp.isneginf(logp), 0.0, logp)


def _softmax_ce_backward(g, out, z, y):
    # L = -sum(y * log softmax(z)) / N. With s = softmax(z): dL/dz = (s * sum_c(y) - y) / N, which is the
    # book's (s - y) / N for one-hot y; 0 on rows with a +inf logit (saturated, see _log_softmax).
    n = _n_examples(z)
    logp, saturated = _log_softmax(z)
    dz = jnp.where(saturated, 0.0, g * (jnp.exp(logp) * jnp.sum(y, axis=-1, keepdims=True) - y) / n)
    return dz, -g * _masked(y, logp) / n


def class_targets(z, y, what: str = "softmax_cross_entropy"):
    """Targets ``y`` for logits ``z`` (..., classes) as rows: integer labels become one-hot rows in z's dtype.

    Under ``jit`` an out-of-range label gives a NaN row (a NaN loss, never a silent 0). The book's ch. 4 loss
    takes one-hot rows only; labels are PyTorch's ``CrossEntropyLoss`` way (ch. 7).

    Args:
      z: logits, (..., classes); only its shape and dtype are read.
      y: integer labels of shape ``z.shape[:-1]``, or floating targets (returned as a jax array, unchanged).
      what: the loss's name for the error messages.

    Returns:
      One-hot rows of z's shape and dtype for integer labels, else ``y``.

    Raises:
      ValueError: integer labels whose shape is not ``z.shape[:-1]``, or (outside ``jit``) labels outside
        ``[0, classes)``.
    """
    if not hasattr(y, "dtype"):
        y = jnp.asarray(y)
    if not jnp.issubdtype(y.dtype, jnp.integer):
        return y
    classes = z.shape[-1] if jnp.ndim(z) else 0
    if shape_of(y) != shape_of(z)[:-1]:
        raise ValueError(
            f"{what}: integer class labels must have shape {shape_of(z)[:-1]} (one label per row of "
            f"the logits {shape_of(z)}), got {shape_of(y)}; or pass one-hot rows "
            "(fdl.data.one_hot(labels, n_classes))"
        )
    valid = valid_labels(y, classes, what)[..., None]
    return jnp.where(valid, jax.nn.one_hot(y, classes, dtype=z.dtype), jnp.nan)


def valid_labels(y, classes: int, what: str, scores: str = "logits"):
    """Where the class labels ``y`` (integer, or floating with integral values) lie in ``[0, classes)``.

    Returns a boolean mask of ``y``'s shape; under ``jit`` it is the only check.

    Raises:
      ValueError: (values known, outside ``jit``) labels outside ``[0, classes)``, NaN or fractional.
    """

    def valid(y, xp):
        ok = (y >= 0) & (y < classes)
        return ok if xp.issubdtype(y.dtype, xp.integer) else ok & (xp.floor(y) == y)

    if not isinstance(y, jax.core.Tracer):  # NumPy: under jit, jnp on a constant would give a tracer
        bad = np.asarray(y)[~valid(np.asarray(y), np)]
        if bad.size:
            raise ValueError(
                f"{what}: class labels must lie in [0, {classes}) for {classes} {scores} per row, "
                f"got {bad[:5].tolist()}"
            )
    return valid(y, jnp)


def _check_ce_shapes(z, y):
    if jnp.ndim(z) < 2:
        expect_rank(z, 2, "softmax_cross_entropy logits", "(batch, classes)")
    if z.size == 0:
        raise ValueError(f"softmax_cross_entropy: expected a non-empty batch, got shape {shape_of(z)}")
    if z.shape[-1] == 1:
        raise ValueError(
            f"softmax_cross_entropy: the logits {shape_of(z)} have a single class column; the softmax of one logit "
            "is 1, so the loss is always 0 and nothing trains. For a binary task use dense(2) with one-hot targets "
            "(fdl.data.one_hot(labels, 2)) and softmax_cross_entropy, or one sigmoid output with "
            "mean_squared_error"
        )
    expect_same_shape(z, y, "softmax_cross_entropy", ("logits", "targets"))


class _CrossEntropyOp(Op):
    """The softmax cross-entropy :class:`~fdl.ops.Op`, which also takes integer class labels as targets."""

    def __call__(self, z, y, grad: str = "manual", **static):
        return super().__call__(z, class_targets(z, y), grad=grad, **static)

    def manual(self, z, y, **static):
        return super().manual(z, class_targets(z, y), **static)


def softmax_cross_entropy_forward(z, y):
    """Categorical cross-entropy of softmax(z) against one-hot (or probability) targets y.

    ``L = -sum(y * log softmax(z)) / N`` over the N rows (all axes but the last, the class axis);
    ``dL/dz = (softmax(z) - y) / N`` for one-hot y (book ch. 4: SoftmaxCrossEntropy).

    Erratum 1: the book prints a per-class *binary* cross-entropy but returns this categorical loss's
    gradient; fdl's loss matches the gradient (see :func:`fdl.metrics.book_cross_entropy` for the book's).

    Args:
      z: logits, (..., classes) with classes >= 2, floating.
      y: targets of the same shape (one-hot rows, probabilities or non-negative weights), or integer class
        labels of shape ``z.shape[:-1]`` (one-hot encoded in z's dtype, as :func:`fdl.metrics.accuracy`
        accepts them).

    Returns:
      A scalar in the promoted dtype of z and y.

    The log-softmax is stable, without clipping. A ``-inf`` logit on a class whose target is 0 masks that
    class; ``+inf`` logits share their row's probability (gradient 0 on that row).

    Raises:
      ValueError: a single class column (the loss would always be 0), an empty batch, logits of rank < 2,
        shapes that differ, or integer labels of the wrong shape or out of range.

    Examples:
        >>> import jax.numpy as jnp
        >>> round(float(softmax_cross_entropy(jnp.array([[-jnp.inf, 0.0, 1.0]]), jnp.array([1]))), 4)
        1.3133
    """
    y = class_targets(z, y)
    _check_ce_shapes(z, y)
    logp, _ = _log_softmax(z)
    return -jnp.sum(y * _masked(y, logp)) / _n_examples(z)


softmax_cross_entropy = _CrossEntropyOp(softmax_cross_entropy_forward, _softmax_ce_backward, "softmax_cross_entropy")
softmax_cross_entropy.__name__ = softmax_cross_entropy.__qualname__ = "softmax_cross_entropy"


def check_targets(loss, outputs, y, what: str = "fit") -> None:
    """Refuse, before training, targets that ``loss`` cannot compare with a model's outputs; say what to do.

    :func:`mean_squared_error` takes targets of the outputs' shape per example; for any other loss, integer
    targets of shape ``(n,)`` are class labels and must index the outputs.

    Args:
      loss: a loss op, or a name for :func:`get_loss`.
      outputs: the model's output shape per example, e.g. ``model.output_shape(X.shape[1:])``.
      y: the targets, ``(n, ...)``, values known (a NumPy or JAX array, not traced).
      what: the caller's name, leading each message.

    Raises:
      ValueError: mean_squared_error targets of another shape per example than ``outputs``; integer class
        labels ``(n,)`` outside ``[0, outputs[-1])``.

    Examples:
        >>> import numpy as np
        >>> check_targets("mse", (1,), np.array([[21.6], [34.7]]))  # one target per output: fine
        >>> check_targets("mse", (1,), np.array([22, 35]))
        Traceback (most recent call last):
        ...
        ValueError: fit: mean_squared_error takes targets ... reshape the targets to (2, 1): y.reshape(-1, 1)...
    """
    loss, outputs, y = get_loss(loss), tuple(outputs), np.asarray(y)
    if loss is mean_squared_error:
        if y.shape[1:] != outputs:
            raise ValueError(
                f"{what}: mean_squared_error takes targets of the model's output shape {outputs} per "
                f"example, got {y.shape[1:]} (targets of shape {y.shape})"
                f"{_regression_targets_hint(outputs, y)}"
            )
        return
    if np.issubdtype(y.dtype, np.integer) and y.ndim == 1 and y.size and outputs:
        classes = outputs[-1]
        if y.min() < 0 or y.max() >= classes:
            raise ValueError(
                f"{what}: integer class labels must lie in [0, {classes}) for the model's {classes} "
                f"outputs, got labels from {y.min()} to {y.max()}; give the last layer one output per "
                "class"
            )


LOSSES = {
    "mse": mean_squared_error,
    "mean_squared_error": mean_squared_error,
    "softmax_cross_entropy": softmax_cross_entropy,
    "cross_entropy": softmax_cross_entropy,
}


def get_loss(name):
    """Look a loss up by name (book ch. 3: MeanSquaredError; ch. 4: SoftmaxCrossEntropy).

    Args:
      name: ``"mse"`` / ``"mean_squared_error"`` or ``"softmax_cross_entropy"`` / ``"cross_entropy"``; any
        non-string (an :class:`~fdl.ops.Op` or a function ``loss(p, y) -> scalar``) is returned as it is.

    Returns:
      The loss: ``loss(p, y, grad="manual") -> scalar``.

    Raises:
      ValueError: an unknown name.
    """
    if not isinstance(name, str):
        return name
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)}") from None
