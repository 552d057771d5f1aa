"""Stacked recurrent layers as a character model, and its one jitted train step (book ch. 6: RNNModel, RNNTrainer).

A model is layers in order, each one's ``output_size`` the next one's input; the last one's output is the
logits over the vocabulary at every step, scored with softmax cross-entropy at every step. Its state is a
list, one state per layer, passed in and returned explicitly.

Loss reduction. fdl's :func:`~fdl.losses.softmax_cross_entropy` is the mean over every (example, step).
The book's ch. 6 loss *sums* over the batch and the steps (its gradient is ``softmax - y`` with no ``/ N``),
so its gradients are ``batch * T`` times larger, which matters with element-wise clipping to +/-2 and with
AdaGrad's ``eps``. ``reduction="sum"`` trains on the book's sum (the reported cross-entropy is still per
character); ``reduction="mean"`` on the mean.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from .. import parallel
from ..losses import softmax_cross_entropy
from ..ops._op import check_grad_mode
from .layers import RecurrentLayer

REDUCTIONS = ("mean", "sum")


class RecurrentModel(NamedTuple):
    """``init(key, (vocab,)) -> [params]``, ``apply(params, x, states, *, grad) -> (y, states)``, ``zero_state()``."""

    init: Callable
    apply: Callable
    zero_state: Callable
    layers: tuple
    name: str = "model"

    def __repr__(self) -> str:
        return self.name


def stack(*layers: RecurrentLayer) -> RecurrentModel:
    """Recurrent layers in order (book: RNNModel(layers=[...])), e.g. ``stack(rnn_layer(256, 128, "rnn"),
    rnn_layer(256, vocab, "lstm"))``. Params and states are lists, one entry per layer."""
    if not layers:
        raise ValueError("stack needs at least one recurrent layer")
    for i, layer in enumerate(layers):
        if not isinstance(layer, RecurrentLayer):
            raise TypeError(f"stack: argument {i} is {layer!r}, not a RecurrentLayer (made by rnn_layer)")

    def init(key, input_shape, dtype=jnp.float32):
        params, shape = [], tuple(input_shape)
        for layer, k in zip(layers, jax.random.split(key, len(layers)), strict=True):
            params.append(layer.init(k, shape, dtype))
            shape = layer.output_shape(shape)
        return params

    def zero_state(dtype=jnp.float32):
        return [layer.zero_state(dtype) for layer in layers]

    def apply(params, x, states, *, grad="manual"):
        check_grad_mode(grad)
        if len(params) != len(layers) or len(states) != len(layers):
            raise ValueError(f"stack: the model has {len(layers)} layers, got {len(params)} params and "
                             f"{len(states)} states")
        new_states = []
        for i, (layer, p, s) in enumerate(zip(layers, params, states, strict=True)):
            try:
                x, s = layer.apply(p, x, s, grad=grad)
            except (ValueError, TypeError) as e:
                raise type(e)(f"layer {i} ({layer.name}): {e}") from None
            new_states.append(s)
        return x, new_states

    return RecurrentModel(init, apply, zero_state, tuple(layers), " -> ".join(layer.name for layer in layers))


def char_loss(model: RecurrentModel, params, x_ids, y_ids, states, vocab_size: int, *, grad: str = "manual",
              reduction: str = "mean", dtype=jnp.float32):
    """``(loss, (cross-entropy per character, next states))`` for integer windows ``x_ids, y_ids`` (batch, T)."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    x = jax.nn.one_hot(x_ids, vocab_size, dtype=dtype)
    y = jax.nn.one_hot(y_ids, vocab_size, dtype=dtype)
    logits, states = model.apply(params, x, states, grad=grad)
    ce = softmax_cross_entropy(logits, y, grad=grad)
    loss = ce * x_ids.size if reduction == "sum" else ce
    return loss, (ce, states)


def make_char_train_step(model: RecurrentModel, optimizer: optax.GradientTransformation, vocab_size: int, *,
                         grad: str = "manual", reduction: str = "mean", devices=None) -> Callable:
    """The jitted step ``(params, opt_state, states, x_ids, y_ids) -> (params, opt_state, states, ce)``.

    ``states`` are the layers' start states; the returned ones (batch means of the last states, no
    gradient) start the next batch, as the book's layers keep ``start_H``.

    ``devices`` (``"all"``, a count or a list, as in :func:`fdl.fit`): data-parallel over a mesh
    (:mod:`fdl.parallel`): the windows are split along the batch axis, params, optimizer state and start
    states are replicated, and XLA inserts the gradient reductions (the hand-written BPTT's weight gradients
    contract over the sharded batch axis). The batch must divide evenly among the devices.
    """
    check_grad_mode(grad)
    mesh = None if devices is None else parallel.make_mesh(devices)

    def step(params, opt_state, states, x_ids, y_ids):
        (_, (ce, states)), grads = jax.value_and_grad(char_loss, argnums=1, has_aux=True)(
            model, params, x_ids, y_ids, states, vocab_size, grad=grad, reduction=reduction)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, states, ce

    if mesh is None:
        return jax.jit(step)
    rep, rows = parallel.replicated(mesh), parallel.batch_sharding(mesh)
    sharded = jax.jit(step, in_shardings=(rep, rep, rep, rows, rows), out_shardings=rep)

    def checked(params, opt_state, states, x_ids, y_ids):
        # Before jit: its in_shardings would refuse an indivisible batch with a message about tiling factors.
        parallel.check_divisible(x_ids.shape[0], mesh)
        return sharded(params, opt_state, states, x_ids, y_ids)

    checked.lower = sharded.lower  # as a jitted function has, to inspect the compiled step
    return checked


def make_char_eval(model: RecurrentModel, vocab_size: int) -> Callable:
    """Jitted ``(params, states, x_ids, y_ids) -> cross-entropy per character`` (nats) from ``states``."""

    def evaluate(params, states, x_ids, y_ids):
        return char_loss(model, params, x_ids, y_ids, states, vocab_size)[1][0]

    return jax.jit(evaluate)


def gradient_norms(model: RecurrentModel, params, x_ids, y_ids, states, vocab_size: int,
                   grad: str = "manual") -> Sequence[dict]:
    """The largest absolute gradient of every parameter, per layer (to show every weight learns)."""
    grads = jax.grad(lambda p: char_loss(model, p, x_ids, y_ids, states, vocab_size, grad=grad)[0])(params)
    return [{k: float(jnp.max(jnp.abs(g))) for k, g in layer.items()} for layer in grads]
