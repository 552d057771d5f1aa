"""The dense (fully connected) layer (book ch. 3-4: Dense)."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from .._checks import expect_positive, expect_probability, expect_rank
from ..init import bias_initialiser, check_initialiser, initialise
from ..ops import bias_add, get_activation, weight_multiply
from ..ops.dropout import check_mode
from .core import Layer, apply_dropout


def dense(neurons: int, activation="linear", *, weight_init: str | Callable = "standard",
          bias_init: str | Callable | None = None, keep_prob: float = 1.0, dropout_mode: str = "book") -> Layer:
    """``activation(x W + B)``, then dropout when ``keep_prob < 1`` (book ch. 3-4: Dense).

    Args:
      neurons: output features.
      activation: ``"linear"``, ``"sigmoid"``, ``"tanh"``, ``"relu"``, ``"leaky_relu"`` or an Op.
      weight_init: ``"standard"`` (N(0, 1)), ``"glorot"``, ``"book_glorot"``, ``"pytorch_uniform"`` or a
        function ``init(key, shape, dtype)`` (see :mod:`fdl.init`); fans ``(in, neurons)``.
      bias_init: ``None`` (as the weights: the same named rule, or zeros after a function), a name or a function.
      keep_prob: the probability of keeping each unit (dropout, as :func:`dropout`); 1.0: no dropout.
      dropout_mode: ``"book"`` (scale at inference) or ``"inverted"`` (scale while training).

    Params: ``{"W": (in, neurons), "B": (1, neurons)}`` in the ``dtype`` given to ``init`` (float32 by default).
    Input ``(batch, in)``, floating point; output ``(batch, neurons)`` in the promoted dtype of the input and the
    params.

    Raises:
      ValueError: at construction, ``neurons`` not a positive integer, ``keep_prob`` outside (0, 1], an unknown
        ``dropout_mode``, ``activation`` or initialiser name; from ``init``, an example shape that is not
        ``(features,)`` (put ``flatten()`` before it) or an initialiser function that returns another shape;
        from ``apply``, an input that is not 2-D or whose feature count differs from ``W``'s, or
        ``train=True`` with dropout and no ``key``.
      TypeError: at construction, ``weight_init`` / ``bias_init`` neither a name nor a function.
    """
    expect_positive(neurons, "dense neurons", integer=True)
    expect_probability(keep_prob, "dense keep_prob")
    check_mode(dropout_mode)
    act = get_activation(activation)
    check_initialiser(weight_init, "dense")  # rejects unknown names now rather than at init
    bias_init = bias_initialiser(weight_init, bias_init)
    check_initialiser(bias_init, "dense", "bias_init")
    name = f"dense({neurons}, {getattr(act, 'name', act)})"

    def init(key, input_shape, dtype=jnp.float32):
        if len(input_shape) != 1:
            raise ValueError(f"{name}: expects inputs of shape (features,) per example, got {tuple(input_shape)}; "
                             "put flatten() before it")
        fans = input_shape[0], neurons
        kw, kb = jax.random.split(key)
        return {"W": initialise(weight_init, kw, (input_shape[0], neurons), *fans, dtype, name + " weight_init"),
                "B": initialise(bias_init, kb, (1, neurons), *fans, dtype, name + " bias_init")}

    def apply(params, x, *, key=None, train=False, grad="manual"):
        expect_rank(x, 2, name + " input", "(batch, features)")
        out = act(bias_add(weight_multiply(x, params["W"], grad=grad), params["B"], grad=grad), grad=grad)
        return apply_dropout(out, keep_prob, key=key, train=train, grad=grad, mode=dropout_mode)

    def output_shape(input_shape):
        return (neurons,)

    return Layer(init, apply, output_shape, name)
