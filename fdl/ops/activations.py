"""Activation operations (book ch. 1, 3, 4): linear, sigmoid, tanh, relu, leaky_relu.

Each activation maps any shape and floating dtype to the same. Kinks: at ``x = 0`` relu and leaky_relu
take the derivative from the left (0, ``slope``), in both gradient modes: the backward masks with ``x > 0``
and the forward is ``where(x > 0, x, ...)``, so ``jax.grad`` agrees (``jnp.maximum`` would give 0.5).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from ._op import Op, op


def _linear_backward(g, out, x):
    return (g,)


@op(_linear_backward)
def linear(x):
    """The identity, ``out = x`` (book ch. 3: Linear)."""
    return x


def _sigmoid_backward(g, out, x):
    return (g * out * (1.0 - out),)


@op(_sigmoid_backward)
def sigmoid(x):
    """``1 / (1 + exp(-x))``, in (0, 1); backward ``g * s * (1 - s)`` (book ch. 3: Sigmoid).

    Examples:
        >>> import jax.numpy as jnp
        >>> [round(v, 4) for v in sigmoid(jnp.array([-1.0, 0.0, 1.0])).tolist()]
        [0.2689, 0.5, 0.7311]
    """
    return jax.nn.sigmoid(x)


def _tanh_backward(g, out, x):
    return (g * (1.0 - out * out),)


@op(_tanh_backward)
def tanh(x):
    """``tanh(x)``, in (-1, 1); backward ``g * (1 - out^2)`` (book ch. 4: Tanh)."""
    return jnp.tanh(x)


def _relu_backward(g, out, x):
    # Erratum 3 (see relu's docstring): the derivative is 1 where x > 0 and 0 elsewhere.
    return (jnp.where(x > 0, g, jnp.zeros_like(g)),)


@op(_relu_backward)
def relu(x):
    """``max(x, 0)``; backward passes ``g`` only where ``x > 0`` (book ch. 4: ReLU, erratum 3 fixed).

    Erratum 3: the book masks with ``output >= 0``, which leaks the gradient through negative inputs.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> jax.grad(lambda x: relu(x).sum())(jnp.array([-2.0, 3.0])).tolist()  # 0 where the input was negative
        [0.0, 1.0]
    """
    return jnp.where(x > 0, x, jnp.zeros_like(x))


def _leaky_relu_backward(g, out, x, *, slope):
    return (jnp.where(x > 0, g, slope * g),)


@op(_leaky_relu_backward)
def leaky_relu(x, *, slope=0.2):
    """``x`` where ``x > 0``, else ``slope * x`` (book ch. 1, slope 0.2); ``slope`` is a static Python float."""
    return jnp.where(x > 0, x, slope * x)


ACTIVATIONS = {"linear": linear, "sigmoid": sigmoid, "tanh": tanh, "relu": relu, "leaky_relu": leaky_relu}


def get_activation(name):
    """Look an activation op up by name (the book's layers take an activation Operation, ch. 3-4).

    Args:
      name: ``"linear"``, ``"sigmoid"``, ``"tanh"``, ``"relu"``, ``"leaky_relu"``, ``None`` (linear), an
        :class:`~fdl.ops.Op` (e.g. one made with :func:`fdl.ops.op`), or a ``functools.partial`` of one (e.g.
        ``partial(fdl.ops.leaky_relu, slope=0.01)``).

    Returns:
      The activation op.

    Raises:
      ValueError: an unknown name.
      TypeError: anything else, e.g. a plain function such as ``jax.nn.softplus`` (it has no hand-written
        backward); the message says how to make an op of it with ``fdl.ops.op``.

    Examples:
        >>> get_activation("tanh")
        Op(tanh)
        >>> import jax
        >>> get_activation(jax.nn.softplus)
        Traceback (most recent call last):
        ...
        TypeError: activation: got the plain function softplus, which is not an fdl op ...
    """
    if name is None:
        return linear
    if isinstance(name, str):
        try:
            return ACTIVATIONS[name]
        except KeyError:
            raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}") from None
    if isinstance(name, Op) or (isinstance(name, functools.partial) and isinstance(name.func, Op)):
        return name
    called = getattr(name, "__name__", None)
    what = f"the plain function {called}" if callable(name) else f"{name!r} of type {type(name).__name__}"
    same = f"fdl has its own {called!r}: pass activation={called!r}; otherwise " if called in ACTIVATIONS else ""
    raise TypeError(
        f"activation: got {what}, which is not an fdl op (an Op with a hand-written backward for "
        f"grad='manual'); {same}pass one of the names {sorted(ACTIVATIONS)}, an op such as "
        "fdl.ops.relu, or make one from your function and its backward: fdl.ops.op(backward)(forward) "
        "with backward(g, out, x) -> (gradient of x,), e.g. fdl.ops.op(lambda g, out, x: "
        "(g * jax.nn.sigmoid(x),))(jax.nn.softplus)"
    )
