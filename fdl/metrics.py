"""Evaluation metrics: MAE and RMSE (book ch. 2-3), accuracy (book ch. 4)."""

from __future__ import annotations

import jax.numpy as jnp

from ._checks import expect_same_shape


def mae(predictions, targets):
    """Mean absolute error, ``mean(|p - y|)``."""
    expect_same_shape(predictions, targets, "mae")
    return jnp.mean(jnp.abs(predictions - targets))


def rmse(predictions, targets):
    """Root mean squared error, ``sqrt(mean((p - y)^2))``."""
    expect_same_shape(predictions, targets, "rmse")
    return jnp.sqrt(jnp.mean((predictions - targets) ** 2))


def accuracy(predictions, targets):
    """Fraction of rows whose argmax agrees. ``targets``: one-hot rows, or integer class labels."""
    guess = jnp.argmax(predictions, axis=-1)
    truth = targets if jnp.ndim(targets) == jnp.ndim(guess) else jnp.argmax(targets, axis=-1)
    if jnp.shape(truth) != jnp.shape(guess):
        raise ValueError(f"accuracy: predictions {jnp.shape(predictions)} and targets {jnp.shape(targets)} "
                         "do not describe the same examples")
    return jnp.mean(guess == truth)
