"""Inference and evaluation (book ch. 3: ``Trainer`` evaluates on the test set every ``eval_every`` epochs)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp

_APPLY_CACHE: dict = {}


def _jitted_apply(model):
    if model not in _APPLY_CACHE:
        _APPLY_CACHE[model] = jax.jit(lambda p, x: model.apply(p, x, train=False))
    return _APPLY_CACHE[model]


def predict(model, params, X, *, batch_size: int | None = None):
    """``model.apply(params, X)`` at inference (no dropout), jitted, in chunks of ``batch_size`` rows if given.

    ``X``: ``(n, *input_shape)``; returns ``(n, *output_shape)`` in the params' dtype. The book's
    ``NeuralNetwork.forward`` with inference set (ch. 3; ch. 4's dropout scales by ``keep_prob``).

    Raises:
      ValueError: the model's own error for an input of the wrong shape (e.g. a dense layer given 4-D images),
        with the layer named; nothing is checked here.
      TypeError: the model's own error for an input of the wrong dtype (e.g. integer images for a conv layer).
    """
    apply = _jitted_apply(model)
    if batch_size is None or len(X) <= batch_size:
        return apply(params, X)
    return jnp.concatenate([apply(params, X[i:i + batch_size]) for i in range(0, len(X), batch_size)])


def evaluate(model, loss, params, X, y, metrics: Mapping[str, Callable] | None = None,
             batch_size: int | None = 10_000) -> dict:
    """``{"loss": ..., <metric>: ...}`` of ``params`` on ``(X, y)`` at inference, as Python floats.

    ``metrics`` maps names to ``fn(predictions, targets)``; predictions are computed in chunks of
    ``batch_size`` rows (memory), the loss and metrics over all rows at once.

    The book's ch. 3 ``Trainer.fit`` evaluation step (the validation loss printed every ``eval_every``
    epochs); ch. 4 adds accuracy, here a metric. ``y``: ``(n, ...)``; integer class labels stay integer, other
    targets are cast to the predictions' dtype.

    Raises:
      ValueError: the model's, the loss's or a metric's own errors (e.g. predictions and targets of different
        shapes); nothing is checked here.
      TypeError: the model's own error for inputs of the wrong dtype.
    """
    pred = predict(model, params, X, batch_size=batch_size)
    y = jnp.asarray(y) if jnp.issubdtype(jnp.asarray(y).dtype, jnp.integer) else jnp.asarray(y, pred.dtype)
    out = {"loss": float(loss(pred, y))}
    for name, fn in (metrics or {}).items():
        out[name] = float(fn(pred, y))
    return out
