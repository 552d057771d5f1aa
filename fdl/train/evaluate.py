"""Inference and evaluation (book ch. 3: ``Trainer`` evaluates on the test set every ``eval_every`` epochs).

Each compiles one program per model, loss and metrics (a small least-recently-used cache) and accepts the
stacked params of several runs (``fit(..., seed=[...])``), scored one after another inside the program.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp

CACHE_SIZE = 8  # models (with their compiled programs) kept by predict / evaluate


def runs_of(model, params, input_shape) -> int | None:
    """The number of runs stacked in ``params`` (a leading axis on every leaf), or ``None`` for one run's params,
    from the leaves' shapes against ``model.init``'s for ``input_shape`` (one example's).

    Raises:
      ValueError: params of neither shape.
    """
    like = jax.eval_shape(lambda k: model.init(k, tuple(input_shape)), jax.random.key(0))
    want = [a.shape for a in jax.tree.leaves(like)]
    got = [jnp.shape(a) for a in jax.tree.leaves(params)]
    if got == want:
        return None
    if (
        len(got) == len(want)
        and got
        and all(g[1:] == w for g, w in zip(got, want, strict=True))
        and len({g[0] for g in got}) == 1
    ):
        return got[0][0]
    raise ValueError(
        f"params do not fit the model {model!r} for inputs {tuple(input_shape)}: leaf shapes "
        f"{got} (expected {want}, or the same with a leading run axis)"
    )


def _rows(apply, params, X, batch_size):
    """``apply(params, X)`` in blocks of ``batch_size`` rows (one block when ``X`` has no more)."""
    n = X.shape[0]
    if batch_size is None or n <= batch_size:
        return apply(params, X)
    full = n // batch_size
    blocks = jax.lax.map(lambda x: apply(params, x), X[: full * batch_size].reshape(full, batch_size, *X.shape[1:]))
    out = blocks.reshape(full * batch_size, *blocks.shape[2:])
    return out if n == full * batch_size else jnp.concatenate([out, apply(params, X[full * batch_size :])])


def scores(model, loss, metrics: tuple, params, X, y, batch_size=None) -> dict:
    """``{"loss": ..., <metric>: ...}`` of one run's ``params`` at inference, as 0-D arrays (traceable: the body
    of :func:`evaluate` and of ``fit``'s evaluations). ``metrics``: ``((name, fn), ...)``."""
    pred = _rows(lambda p, x: model.apply(p, x, train=False), params, X, batch_size)
    y = y if jnp.issubdtype(y.dtype, jnp.integer) else y.astype(pred.dtype)
    return {"loss": loss(pred, y), **{name: fn(pred, y) for name, fn in metrics}}


@functools.lru_cache(maxsize=CACHE_SIZE)
def _programs(model, loss, metrics: tuple):
    """The compiled ``predict(params, X, batch_size)`` and ``scores(params, X, y, batch_size)`` of a model,
    each in a one-run and a stacked (``lax.map`` over runs) form."""
    apply = lambda p, x: model.apply(p, x, train=False)  # noqa: E731

    def predict(params, X, batch_size):
        return _rows(apply, params, X, batch_size)

    def score(params, X, y, batch_size):
        return scores(model, loss, metrics, params, X, y, batch_size)

    def stacked(fn):
        def many(params, *args, batch_size):
            return jax.lax.map(lambda p: fn(p, *args, batch_size), params)

        return many

    jit = functools.partial(jax.jit, static_argnames=("batch_size",))
    return {"predict": (jit(predict), jit(stacked(predict))), "scores": (jit(score), jit(stacked(score)))}


def _program(model, loss, metrics, what: str, stacked: bool):
    items = tuple(sorted((metrics or {}).items()))
    try:
        return _programs(model, loss, items)[what][stacked]
    except TypeError:  # an unhashable model, loss or metric: compiled for this call only
        return _programs.__wrapped__(model, loss, items)[what][stacked]


def predict(model, params, X, *, batch_size: int | None = None):
    """``model.apply(params, X)`` at inference (book ch. 3: ``NeuralNetwork.forward``; dropout off), compiled,
    in blocks of ``batch_size`` rows if given.

    ``X``: ``(n, *input_shape)``; returns ``(n, *output_shape)`` in the params' dtype, or
    ``(runs, n, *output_shape)`` for stacked params.

    Raises:
      ValueError: params that fit the model neither as one run's nor as stacked runs'.
    """
    X = jnp.asarray(X)
    stacked = runs_of(model, params, X.shape[1:]) is not None
    return _program(model, None, None, "predict", stacked)(params, X, batch_size=batch_size)


def evaluate(model, loss, params, X, y, metrics: Mapping[str, Callable] | None = None, batch_size: int | None = 10_000):
    """``{"loss": ..., <metric>: ...}`` of ``params`` on ``(X, y)`` at inference, as Python floats (book ch. 3:
    ``Trainer.fit``'s validation loss; ch. 4's accuracy is a metric here); a list of them for stacked params.

    ``metrics``: ``{name: fn(predictions, targets)}``, jax-traceable. Predictions are computed in blocks of
    ``batch_size`` rows, the loss and metrics over all rows. ``y``: ``(n, ...)``; integer class labels stay
    integers, other targets are cast to the predictions' dtype.

    Raises:
      ValueError: params that fit the model neither as one run's nor as stacked runs'.
    """
    X, y = jnp.asarray(X), jnp.asarray(y)
    runs = runs_of(model, params, X.shape[1:])
    out = _program(model, loss, metrics, "scores", runs is not None)(params, X, y, batch_size=batch_size)
    out = jax.tree.map(lambda a: a.tolist(), jax.device_get(out))
    if runs is None:
        return {k: float(v) for k, v in out.items()}
    return [{k: float(v[i]) for k, v in out.items()} for i in range(runs)]
