"""Activation operations (book ch. 1, 3, 4): linear, sigmoid, tanh, relu, leaky_relu.

Each backward uses what the forward cached (its input ``x`` or its output ``out``), as the book does.

Kinks. relu and leaky_relu are not differentiable at ``x = 0``; fdl takes the derivative from the left there
(0 for relu, ``slope`` for leaky_relu), for ``-0.0`` too. The hand-written backward masks with ``x > 0``
and the plain forward is written as ``where(x > 0, x, ...)``, so ``jax.grad`` of it picks the same value:
both gradient modes agree at exactly 0 (``jnp.maximum(x, 0)`` would give 0.5, splitting the tie).
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
    """The identity, ``out = x``; backward passes ``g`` through (book ch. 3: Linear).

    x: any shape and floating dtype; the output has the same shape and dtype. Raises nothing itself.
    """
    return x


def _sigmoid_backward(g, out, x):
    return (g * out * (1.0 - out),)


@op(_sigmoid_backward)
def sigmoid(x):
    """``1 / (1 + exp(-x))``; backward ``g * s * (1 - s)`` (book ch. 3: Sigmoid).

    x: any shape and floating dtype; the output has the same shape and dtype, values in (0, 1). Raises nothing
    itself.

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
    """``tanh(x)``; backward ``g * (1 - out^2)`` (book ch. 4: Tanh).

    x: any shape and floating dtype; the output has the same shape and dtype, values in (-1, 1). Raises
    nothing itself.
    """
    return jnp.tanh(x)


def _relu_backward(g, out, x):
    # Erratum 3: the book masks with ``output >= 0``, which is always true after a ReLU, so its gradient
    # leaks through negative inputs. The derivative is 1 where x > 0 and 0 elsewhere.
    return (jnp.where(x > 0, g, jnp.zeros_like(g)),)


@op(_relu_backward)
def relu(x):
    """``max(x, 0)``; backward passes ``g`` only where ``x > 0`` (book ch. 4: ReLU, erratum 3 fixed).

    x: any shape and floating dtype; the output has the same. At the kink ``x = 0`` the derivative is 0 in
    both gradient modes (the forward is ``where(x > 0, x, 0)``, so ``jax.grad`` agrees with the backward).
    Raises nothing itself.

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
    """``x`` where ``x > 0``, else ``slope * x`` (book ch. 1, slope 0.2).

    x: any shape and floating dtype; ``slope`` a static Python float. At the kink ``x = 0`` the derivative is
    ``slope`` in both gradient modes. Raises nothing itself (``slope`` is not checked).
    """
    return jnp.where(x > 0, x, slope * x)


ACTIVATIONS = {"linear": linear, "sigmoid": sigmoid, "tanh": tanh, "relu": relu, "leaky_relu": leaky_relu}


def get_activation(name):
    """Look an activation op up by name (the book's layers take an activation Operation, ch. 3-4).

    Layers (:func:`fdl.layers.dense`, :func:`fdl.layers.conv2d`) resolve their ``activation`` here when they
    are built, so a wrong one is refused there, not at the first step.

    Args:
      name: ``"linear"``, ``"sigmoid"``, ``"tanh"``, ``"relu"``, ``"leaky_relu"``, ``None`` (linear), an
        :class:`~fdl.ops.Op` (e.g. one made with :func:`fdl.ops.op`), or a ``functools.partial`` of one (e.g.
        ``partial(fdl.ops.leaky_relu, slope=0.01)``).

    Returns:
      The activation op: it maps an array of any shape to one of the same shape and dtype, and takes
      ``grad="manual" | "autodiff"``.

    Raises:
      ValueError: an unknown name; the message lists the known ones.
      TypeError: anything else, e.g. a plain function such as ``jax.nn.softplus``: it has no hand-written
        backward for ``grad="manual"``; the message says to pass a name or to make an op with ``fdl.ops.op``.

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
    raise TypeError(f"activation: got {what}, which is not an fdl op (an Op with a hand-written backward for "
                    f"grad='manual'); {same}pass one of the names {sorted(ACTIVATIONS)}, an op such as "
                    "fdl.ops.relu, or make one from your function and its backward: fdl.ops.op(backward)(forward) "
                    "with backward(g, out, x) -> (gradient of x,), e.g. fdl.ops.op(lambda g, out, x: "
                    "(g * jax.nn.sigmoid(x),))(jax.nn.softplus)")
