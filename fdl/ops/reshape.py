"""``flatten`` (book ch. 5: Flatten) and its inverse ``unflatten``."""

from __future__ import annotations

import jax.numpy as jnp

from ._op import op


def _flatten_backward(g, out, x):
    return (jnp.reshape(g, x.shape),)


@op(_flatten_backward)
def flatten(x):
    """Reshape ``(batch, ...)`` to ``(batch, prod(...))``; backward reshapes the gradient back (book ch. 5: Flatten).

    x: any floating dtype, at least 1-D (a 1-D ``(batch,)`` gives ``(batch, 1)``); the output keeps x's dtype.

    Raises:
      ValueError: x is 0-D (no batch axis).

    Examples:
        >>> import jax.numpy as jnp
        >>> flatten(jnp.zeros((2, 3, 4, 4))).shape
        (2, 48)
    """
    if x.ndim < 1:
        raise ValueError(f"flatten: expected an array with a batch axis, got shape {x.shape}")
    return jnp.reshape(x, (x.shape[0], -1))


def _unflatten_backward(g, out, x, *, shape):
    return (jnp.reshape(g, x.shape),)


@op(_unflatten_backward)
def unflatten(x, *, shape):
    """Reshape ``(batch, n)`` to ``(batch, *shape)``; backward flattens the gradient back.

    The inverse of :func:`flatten` (book ch. 7's autoencoder reshapes its decoder's dense output to
    ``(7, 28, 28)`` this way). ``shape`` is a static tuple with ``prod(shape) == n``; the output keeps x's
    dtype. Raises nothing itself: a ``shape`` that does not fit raises jax's own TypeError from
    ``jnp.reshape``.
    """
    return jnp.reshape(x, (x.shape[0], *shape))
