"""Evaluation metrics: MAE and RMSE (book ch. 2-3), accuracy and the book's reported cross-entropy (book ch. 4)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ._checks import expect_same_shape, shape_of
from .losses import valid_labels


def _expect_nonempty(predictions, what: str) -> None:
    if jnp.size(predictions) == 0:
        raise ValueError(
            f"{what}: got an empty batch (predictions of shape {shape_of(predictions)}); a mean over "
            "no examples is undefined"
        )


def mae(predictions, targets):
    """Mean absolute error, ``mean(|p - y|)`` (book ch. 2-3: MAE).

    ``predictions`` and ``targets``: one shape (any), non-empty. Returns a 0-D array in their promoted dtype,
    in the targets' units; a NaN gives NaN and an infinite prediction ``inf``.

    Raises:
      ValueError: shapes that differ, or an empty batch.

    Examples:
        >>> import jax.numpy as jnp
        >>> float(mae(jnp.array([1.0, -3.0]), jnp.array([0.0, 0.0])))
        2.0
        >>> float(mae(jnp.array([1.0, jnp.nan]), jnp.array([0.0, 0.0])))
        nan
    """
    expect_same_shape(predictions, targets, "mae")
    _expect_nonempty(predictions, "mae")
    return jnp.mean(jnp.abs(predictions - targets))


def rmse(predictions, targets):
    """Root mean squared error, ``sqrt(mean((p - y)^2))`` (book ch. 2-3: RMSE).

    Shapes, dtypes and non-finite values as for :func:`mae`.

    Raises:
      ValueError: shapes that differ, or an empty batch.

    Examples:
        >>> import jax.numpy as jnp
        >>> float(rmse(jnp.array([1.0, 3.0]), jnp.array([0.0, 0.0])))  # sqrt((1 + 9) / 2)
        2.236...
    """
    expect_same_shape(predictions, targets, "rmse")
    _expect_nonempty(predictions, "rmse")
    return jnp.sqrt(jnp.mean((predictions - targets) ** 2))


def _no_argmax(scores):
    """Rows of ``scores`` (..., classes) that name no class: a NaN, or a top score of +-inf shared by classes."""
    top = jnp.max(scores, axis=-1, keepdims=True)
    tied_at_infinity = jnp.isinf(top[..., 0]) & (jnp.sum(scores == top, axis=-1) > 1)
    return jnp.any(jnp.isnan(scores), axis=-1) | tied_at_infinity


def accuracy(predictions, targets):
    """Fraction of rows whose argmax agrees (book ch. 4); NaN when a row names no class.

    Args:
      predictions: (..., classes) scores (logits or probabilities), classes >= 2.
      targets: one-hot (or probability) rows of the same shape, or class labels of shape
        ``predictions.shape[:-1]`` in ``[0, classes)``.

    Returns:
      A 0-D float array in [0, 1], or NaN when a row names no class.

    A row names no class when its prediction has a NaN or a top score of ``+-inf`` shared by several classes,
    its target row is not finite, or its label is out of range under ``jit``: NaN rather than a count of
    wrong rows, so that a diverged model gets no plausible score. ``-inf`` scores otherwise mask classes.

    Raises:
      ValueError: an empty batch, a single class column (its argmax is always 0), targets that do not describe
        the same examples, or (values known, outside ``jit``) labels outside ``[0, classes)``.

    Examples:
        >>> import jax.numpy as jnp
        >>> float(accuracy(jnp.array([[0.1, 0.9], [0.8, 0.2]]), jnp.array([1, 1])))
        0.5
        >>> float(accuracy(jnp.array([[0.1, 0.9], [jnp.nan, jnp.nan]]), jnp.array([1, 0])))
        nan
    """
    _expect_nonempty(predictions, "accuracy")
    if jnp.ndim(predictions) >= 2 and jnp.shape(predictions)[-1] == 1:
        raise ValueError(
            f"accuracy: predictions {shape_of(predictions)} have a single class column, whose argmax "
            "is always 0; for a binary task use dense(2) outputs with one-hot targets "
            "(fdl.data.one_hot(labels, 2))"
        )
    predictions, targets = jnp.asarray(predictions), jnp.asarray(targets)
    labels = targets.ndim == predictions.ndim - 1
    if shape_of(targets) != (shape_of(predictions)[:-1] if labels else shape_of(predictions)):
        raise ValueError(
            f"accuracy: predictions {shape_of(predictions)} and targets {shape_of(targets)} "
            "do not describe the same examples"
        )
    if labels:
        truth = targets
        unnamed = ~valid_labels(targets, predictions.shape[-1], "accuracy", "scores")
    else:
        truth = jnp.argmax(targets, axis=-1)
        unnamed = ~jnp.all(jnp.isfinite(targets), axis=-1)
    unnamed = unnamed | _no_argmax(predictions)
    return jnp.where(jnp.any(unnamed), jnp.nan, jnp.mean(jnp.argmax(predictions, axis=-1) == truth))


def book_cross_entropy(predictions, targets, eps: float = 1e-9):
    """The value the book's ``SoftmaxCrossEntropy`` reports and its ``Trainer`` stops early on (ch. 4).

    ``p = clip(softmax(predictions), eps, 1 - eps)``, then ``sum(-y log p - (1 - y) log(1 - p)) / rows``:
    a binary cross-entropy summed over the classes, not the categorical one the book trains with
    (:func:`fdl.losses.softmax_cross_entropy`). A metric for stopping early as the book did
    (:class:`fdl.train.StopRule`), not a training loss. Computed from log-probabilities, so that float32
    gives float64's value (the book's formula gives NaN where ``1 - eps`` rounds to 1).

    Args:
      predictions: ``(..., classes)`` logits, floating point, classes >= 2; every row is an example.
      targets: one-hot (or probability) rows of the same shape.
      eps: the clip, in (0, 0.5) (the book's 1e-9).

    Returns:
      A 0-D array in the predictions' dtype: the sum over classes, averaged over the rows.

    Raises:
      ValueError: no rows, fewer than two classes, targets of another shape (e.g. class labels: pass
        ``fdl.data.one_hot(labels, classes)``), or ``eps`` outside (0, 0.5).
    """
    _expect_nonempty(predictions, "book_cross_entropy")
    x = jnp.asarray(predictions)
    if x.ndim == 0 or x.shape[-1] < 2:
        raise ValueError(f"book_cross_entropy: predictions {shape_of(x)} need a last axis of at least 2 classes")
    if shape_of(targets) != shape_of(x):
        raise ValueError(
            f"book_cross_entropy: targets {shape_of(targets)} must be one-hot rows of the predictions' "
            f"shape {shape_of(x)}; for class labels pass fdl.data.one_hot(labels, {x.shape[-1]})"
        )
    if not 0 < eps < 0.5:
        raise ValueError(f"book_cross_entropy: eps must be in (0, 0.5), got {eps}")
    targets = jnp.asarray(targets).astype(x.dtype)
    classes = x.shape[-1]
    log_z = jax.nn.logsumexp(x, axis=-1, keepdims=True)
    others = jnp.where(jnp.eye(classes, dtype=bool), -jnp.inf, x[..., None, :])  # row i: every class but i
    log_p = x - log_z
    log_not_p = jax.nn.logsumexp(others, axis=-1) - log_z  # log(1 - p), exact where p rounds to 1
    lo, hi = jnp.log(eps), jnp.log1p(-eps)  # the clip of p to [eps, 1 - eps], in logs
    log_p, log_not_p = jnp.clip(log_p, lo, hi), jnp.clip(log_not_p, lo, hi)
    terms = -targets * log_p - (1 - targets) * log_not_p
    return jnp.sum(terms) / (x.size // classes)
