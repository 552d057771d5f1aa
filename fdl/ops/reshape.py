"""``flatten`` (book ch. 5: Flatten) and its inverse ``unflatten``."""

from __future__ import annotations

import jax.numpy as jnp

from ._op import op


def _flatten_backward(g, out, x):
    return (jnp.reshape(g, x.shape),)


@op(_flatten_backward)
def flatten(x):
    """Reshape ``(batch, ...)`` to ``(batch, prod(...))`` in x's dtype (book ch. 5: Flatten); 1-D gives ``(batch, 1)``.

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

    The inverse of :func:`flatten` (book ch. 7's autoencoder decoder). ``shape`` is a static tuple with
    ``prod(shape) == n``.
    """
    return jnp.reshape(x, (x.shape[0], *shape))
