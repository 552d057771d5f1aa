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


def dense(
    neurons: int,
    activation="linear",
    *,
    weight_init: str | Callable = "standard",
    bias_init: str | Callable | None = None,
    keep_prob: float = 1.0,
    dropout_mode: str = "book",
) -> Layer:
    """``activation(x W + B)``, then dropout when ``keep_prob < 1`` (book ch. 3-4: Dense).

    Args:
      neurons: output features.
      activation: ``"linear"``, ``"sigmoid"``, ``"tanh"``, ``"relu"``, ``"leaky_relu"`` or an Op.
      weight_init: a name of :mod:`fdl.init` (default ``"standard"``, N(0, 1)) or a function
        ``init(key, shape, dtype)``; fans ``(in, neurons)``.
      bias_init: ``None`` (as the weights, see :mod:`fdl.init`), a name or a function.
      keep_prob: the probability of keeping each unit (dropout); 1.0: no dropout.
      dropout_mode: ``"book"`` (scale at inference) or ``"inverted"`` (scale while training).

    Params ``{"W": (in, neurons), "B": (1, neurons)}`` in ``init``'s dtype (float32 by default). Input
    ``(batch, in)``, floating point; output ``(batch, neurons)`` in the promoted dtype. ``init`` refuses an
    example shape other than ``(features,)``; ``apply`` raises the ops' errors.

    Raises:
      ValueError: ``neurons`` not a positive integer, ``keep_prob`` outside (0, 1], an unknown
        ``dropout_mode``, ``activation`` or initialiser name.
      TypeError: ``weight_init`` / ``bias_init`` neither a name nor a function.
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
            raise ValueError(
                f"{name}: expects inputs of shape (features,) per example, got {tuple(input_shape)}; "
                "put flatten() before it"
            )
        fans = input_shape[0], neurons
        kw, kb = jax.random.split(key)
        return {
            "W": initialise(weight_init, kw, (input_shape[0], neurons), *fans, dtype, name + " weight_init"),
            "B": initialise(bias_init, kb, (1, neurons), *fans, dtype, name + " bias_init"),
        }

    def apply(params, x, *, key=None, train=False, grad="manual"):
        expect_rank(x, 2, name + " input", "(batch, features)")
        out = act(bias_add(weight_multiply(x, params["W"], grad=grad), params["B"], grad=grad), grad=grad)
        return apply_dropout(out, keep_prob, key=key, train=train, grad=grad, mode=dropout_mode)

    def output_shape(input_shape):
        return (neurons,)

    return Layer(init, apply, output_shape, name)
