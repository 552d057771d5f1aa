"""Evaluation metrics: MAE and RMSE (book ch. 2-3), accuracy (book ch. 4)."""

from __future__ import annotations

import jax.numpy as jnp

from ._checks import expect_same_shape, shape_of


def _expect_nonempty(predictions, what: str) -> None:
    if jnp.size(predictions) == 0:
        raise ValueError(f"{what}: got an empty batch (predictions of shape {shape_of(predictions)}); a mean over "
                         "no examples is undefined")


def mae(predictions, targets):
    """Mean absolute error, ``mean(|p - y|)`` (book ch. 2-3: MAE).

    p, y: the same shape (any), non-empty; returns a 0-D array in their promoted dtype, in the targets' units
    (e.g. $1000s for Boston's MEDV).

    Raises:
      ValueError: shapes that differ, or an empty batch.
    """
    expect_same_shape(predictions, targets, "mae")
    _expect_nonempty(predictions, "mae")
    return jnp.mean(jnp.abs(predictions - targets))


def rmse(predictions, targets):
    """Root mean squared error, ``sqrt(mean((p - y)^2))`` (book ch. 2-3: RMSE).

    p, y: the same shape (any), non-empty; returns a 0-D array in their promoted dtype, in the targets' units.

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


def accuracy(predictions, targets):
    """Fraction of rows whose argmax agrees (book ch. 4).

    predictions: (..., classes) scores with classes >= 2; targets: one-hot rows of the same shape, or integer
    class labels of shape ``predictions.shape[:-1]``. Raises ValueError for an empty batch, a single class
    column (its argmax is always 0), or targets that do not describe the same examples.

    Examples:
        >>> import jax.numpy as jnp
        >>> float(accuracy(jnp.array([[0.1, 0.9], [0.8, 0.2]]), jnp.array([1, 1])))
        0.5
    """
    _expect_nonempty(predictions, "accuracy")
    if jnp.ndim(predictions) >= 2 and jnp.shape(predictions)[-1] == 1:
        raise ValueError(f"accuracy: predictions {shape_of(predictions)} have a single class column, whose argmax "
                         "is always 0; for a binary task use dense(2) outputs with one-hot targets "
                         "(fdl.data.one_hot(labels, 2))")
    guess = jnp.argmax(predictions, axis=-1)
    truth = targets if jnp.ndim(targets) == jnp.ndim(guess) else jnp.argmax(targets, axis=-1)
    if jnp.shape(truth) != jnp.shape(guess):
        raise ValueError(f"accuracy: predictions {jnp.shape(predictions)} and targets {jnp.shape(targets)} "
                         "do not describe the same examples")
    return jnp.mean(guess == truth)
