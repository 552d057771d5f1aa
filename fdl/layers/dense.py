"""The dense (fully connected) layer (book ch. 3-4: Dense)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._checks import expect_positive, expect_probability, expect_rank
from ..init import init_scale, normal
from ..ops import bias_add, get_activation, weight_multiply
from ..ops.dropout import check_mode
from .core import Layer, apply_dropout


def dense(neurons: int, activation="linear", *, weight_init: str = "standard", dropout: float = 1.0,
          dropout_mode: str = "book") -> Layer:
    """``activation(x W + B)``, then dropout when ``dropout < 1`` (book: Dense).

    Args:
      neurons: output features.
      activation: ``"linear"``, ``"sigmoid"``, ``"tanh"``, ``"relu"``, ``"leaky_relu"`` or an Op.
      weight_init: ``"standard"`` (N(0, 1)), ``"glorot"`` or ``"book_glorot"`` (see :mod:`fdl.init`).
      dropout: keep probability; 1.0 means no dropout.
      dropout_mode: ``"book"`` (scale at inference) or ``"inverted"`` (scale while training).

    Params: ``{"W": (in, neurons), "B": (1, neurons)}``. Input ``(batch, in)``, output ``(batch, neurons)``.
    """
    expect_positive(neurons, "dense neurons", integer=True)
    expect_probability(dropout, "dense dropout (keep probability)")
    check_mode(dropout_mode)
    act = get_activation(activation)
    init_scale(weight_init, 1, 1)  # rejects unknown names now rather than at init
    name = f"dense({neurons}, {getattr(act, 'name', act)})"

    def init(key, input_shape, dtype=jnp.float32):
        if len(input_shape) != 1:
            raise ValueError(f"{name}: expects inputs of shape (features,) per example, got {tuple(input_shape)}; "
                             "put flatten() before it")
        scale = init_scale(weight_init, input_shape[0], neurons)
        kw, kb = jax.random.split(key)
        return {"W": normal(kw, (input_shape[0], neurons), scale, dtype),
                "B": normal(kb, (1, neurons), scale, dtype)}

    def apply(params, x, *, key=None, train=False, grad="manual"):
        expect_rank(x, 2, name + " input", "(batch, features)")
        out = act(bias_add(weight_multiply(x, params["W"], grad=grad), params["B"], grad=grad), grad=grad)
        return apply_dropout(out, dropout, key=key, train=train, grad=grad, mode=dropout_mode)

    def output_shape(input_shape):
        return (neurons,)

    return Layer(init, apply, output_shape, name)
