"""Stacked recurrent layers as one model (book ch. 6: RNNModel).

A model is layers in order, each one's ``output_size`` the next one's input; for a character model the last
one's output is the logits over the vocabulary at every step (:mod:`fdl.recurrent.char_loss`). Its state is a
list, one state per layer, passed in and returned explicitly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax.numpy as jnp

from ..layers.core import check_layers, init_in_order
from ..ops._op import check_grad_mode
from .layers import RecurrentLayer


class RecurrentModel(NamedTuple):
    """``init(key, (vocab,)) -> [params]``, ``apply(params, x, states, *, grad) -> (y, states)``, ``zero_state()``.

    The book's ch. 6 RNNModel, with its params and states outside it. ``x``: (batch, T, vocab) floating;
    ``y``: (batch, T, last layer's output_size); ``states``: a list, one state per layer (each field
    (1, hidden) or (batch, hidden)). Built by :func:`stack`, which documents the errors ``apply`` raises.
    """

    init: Callable
    apply: Callable
    zero_state: Callable
    layers: tuple
    name: str = "model"

    def __repr__(self) -> str:
        return self.name


def stack(*layers: RecurrentLayer) -> RecurrentModel:
    """Recurrent layers in order (book ch. 6: ``RNNModel(layers=[...])``).

    E.g. ``stack(rnn_layer(256, 128, "rnn"), rnn_layer(256, vocab, "lstm"))``. Params and states are lists,
    one entry per layer. ``init(key, (vocab,), dtype)`` gives params in ``dtype``; ``zero_state(dtype)`` a
    list of zero states of shape (1, hidden); ``apply(params, x, states, *, grad)`` maps x (batch, T, in)
    to ``(y (batch, T, out), next states)``, each next state the batch mean of the last one, (1, hidden).

    Raises:
      ValueError: at construction, no layers; from ``apply``, a ``grad`` other than ``"manual"`` /
        ``"autodiff"``, or params or states for a different number of layers.
      TypeError: at construction, an argument that is not a :class:`~fdl.recurrent.RecurrentLayer`. A
        ValueError or TypeError of a layer's ``apply`` is re-raised as the same type, its message prefixed
        with ``layer i (name):``.
    """
    check_layers(layers, RecurrentLayer, "stack", "a RecurrentLayer (made by rnn_layer)")
    init = init_in_order(layers)

    def zero_state(dtype=jnp.float32):
        return [layer.zero_state(dtype) for layer in layers]

    def apply(params, x, states, *, grad="manual"):
        check_grad_mode(grad)
        if len(params) != len(layers) or len(states) != len(layers):
            raise ValueError(
                f"stack: the model has {len(layers)} layers, got {len(params)} params and {len(states)} states"
            )
        new_states = []
        for i, (layer, p, s) in enumerate(zip(layers, params, states, strict=True)):
            try:
                x, s = layer.apply(p, x, s, grad=grad)
            except (ValueError, TypeError) as e:
                raise type(e)(f"layer {i} ({layer.name}): {e}") from None
            new_states.append(s)
        return x, new_states

    return RecurrentModel(init, apply, zero_state, tuple(layers), " -> ".join(layer.name for layer in layers))
