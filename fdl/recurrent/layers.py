"""Recurrent layers over a whole sequence and their hand-written backpropagation through time (book ch. 6).

A layer runs its cell (:mod:`fdl.recurrent.cells`) as the body of a ``lax.scan`` over the time axis and
applies the output projection ``y_t = H_t W_v + B_v`` at every step (book: RNNLayer/GRULayer/LSTMLayer).

``grad="manual"`` differentiates the layer with :func:`_bptt`'s hand-written backward, a ``jax.custom_vjp``
around the forward scan: a reverse scan runs the book's node backward for every step (carrying only
``dH``, ``dC``), and the weight gradients of all steps are then one matrix product each. ``grad="autodiff"``
lets ``jax.grad`` differentiate the same forward scan.

The start state is explicit: ``apply(params, x, state) -> (y, next_state)``. As the book does
(``self.start_H = H.mean(axis=0, keepdims=True)``), ``next_state`` is the batch mean of the last state, of
shape (1, hidden), with ``stop_gradient``: the next batch starts from it and no gradient crosses batches.
``zero_state()`` is a fresh start.

Initialisation, ``weight_init="book"``: every parameter, biases included, is drawn from
``N(0, scale^2)`` with ``scale = 2 / (n_in + output_size)``, ``n_in`` the layer's input features (the book's
RNNLayer._init_params; the same square-root-less "glorot" as erratum 5). ``"glorot"`` uses
``sqrt(2 / (fan_in + fan_out))`` per matrix (biases with their matrix's scale, as fdl.init does).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from .._checks import expect_rank
from ..init import init_scale, normal
from ..ops._op import check_grad_mode
from .cells import Cell, get_cell

WEIGHT_INITS = ("book", "glorot", "standard")


class RecurrentLayer(NamedTuple):
    """``init``, ``apply``, ``zero_state`` and ``output_shape`` of a recurrent layer.

    * ``init(key, input_shape, dtype=float32) -> params``; ``input_shape`` is one time step's features,
      e.g. ``(vocab,)``; params use the book's names (``W_f, B_f, ..., W_v, B_v``).
    * ``apply(params, x, state, *, grad="manual") -> (y, next_state)``; ``x`` (batch, T, in),
      ``y`` (batch, T, output_size).
    * ``zero_state(dtype=float32)``: the state of shape (1, hidden) with zeros.
    """

    init: Callable
    apply: Callable
    zero_state: Callable
    output_shape: Callable
    cell: Cell
    hidden_size: int
    output_size: int
    name: str = "recurrent"

    def __repr__(self) -> str:
        return self.name


def _scan_forward(cell: Cell, params, x, state0):
    """The plain forward: ``(y (batch, T, out), last state, and what the backward needs)``."""
    n_in = x.shape[-1]
    W_x, B, W_h = cell.fuse(params, n_in)
    batch = x.shape[0]
    xs = jnp.swapaxes(x, 0, 1)                                  # (T, batch, in): time leads for the scan
    xp = xs @ W_x + B[None]                                      # every step's input projection at once
    state0 = jax.tree.map(lambda s: jnp.broadcast_to(s, (batch, s.shape[-1])).astype(xp.dtype), state0)

    def body(state, xp_t):
        new, saved = cell.step(W_h, state, xp_t)
        return new, (new, saved)

    last, (states, saved) = jax.lax.scan(body, state0, xp)
    y = jnp.swapaxes(states.H @ params["W_v"] + params["B_v"][None], 0, 1)
    return y, last, (xs, state0, states, saved)


def _reduce_to(d, like):
    """Sum the gradient of a broadcast start state back to its shape ((1, hidden) or (batch, hidden))."""
    d = d.sum(0, keepdims=True) if like.shape[0] == 1 and d.shape[0] != 1 else d
    return d.astype(like.dtype)


@functools.cache
def _bptt(cell: Cell) -> Callable:
    """``f(params, x, state0) -> (y, last_state)`` with the hand-written BPTT as its ``custom_vjp``."""

    def forward(params, x, state0):
        y, last, _ = _scan_forward(cell, params, x, state0)
        return y, last

    def fwd(params, x, state0):
        y, last, res = _scan_forward(cell, params, x, state0)
        return (y, last), (params, state0, res)

    def bwd(residuals, cotangents):
        params, state0_in, (xs, state0, states, saved) = residuals
        dy, dlast = cotangents
        T, batch, n_in = xs.shape
        hidden = state0.H.shape[-1]
        W_x, _, W_h = cell.fuse(params, n_in)
        dy = jnp.swapaxes(dy, 0, 1)                                              # (T, batch, out)
        # Output projection of every step at once (book: the W_v/B_v lines of each node's backward).
        grads = {"W_v": jnp.einsum("tbh,tbo->ho", states.H, dy), "B_v": dy.sum((0, 1))[None]}
        dH_out = dy @ params["W_v"].T
        prev = jax.tree.map(lambda s0, s: jnp.concatenate([s0[None], s[:-1]]), state0, states)

        # The step backward multiplies by the transposed recurrent weights every step: transpose them once,
        # into memory, before the loop (XLA would otherwise fold the transpose into each step's product, and
        # XLA:CPU multiplies by a transposed operand more slowly).
        W_hT = jax.lax.optimization_barrier(jax.tree.map(lambda w: w.T, W_h))

        def body(dstate, inputs):
            return cell.step_backward(W_hT, dstate, inputs)

        terms = cell.backward_terms(saved, prev, states)        # everything that needs no carried gradient
        dstate0, dpre = jax.lax.scan(body, dlast, (dH_out, terms), reverse=True)
        dx = jnp.swapaxes(dpre @ W_x.T, 0, 1).astype(xs.dtype)
        flat = lambda a: a.reshape(T * batch, a.shape[-1])  # noqa: E731
        grads.update(cell.param_grads(flat(xs), jax.tree.map(flat, prev), jax.tree.map(flat, states),
                                      jax.tree.map(flat, saved), flat(dpre), n_in, hidden))
        grads = {k: grads[k].astype(params[k].dtype) for k in params}
        return grads, dx, jax.tree.map(_reduce_to, dstate0, state0_in)

    f = jax.custom_vjp(forward)
    f.defvjp(fwd, bwd)
    return f


def run(cell: Cell, params, x, state0, *, grad: str = "manual"):
    """Run a layer over ``x`` (batch, T, in) from ``state0``: ``(y (batch, T, out), last state (batch, hidden))``."""
    if check_grad_mode(grad) == "manual":
        return _bptt(cell)(params, x, state0)
    y, last, _ = _scan_forward(cell, params, x, state0)
    return y, last


def rnn_layer(hidden_size: int, output_size: int, cell: str = "lstm", *, weight_init: str = "book",
              weight_scale: float | None = None) -> RecurrentLayer:
    """A recurrent layer (book: RNNLayer, GRULayer, LSTMLayer with ``hidden_size``, ``output_size``).

    Args:
      hidden_size: units of the hidden (and cell) state.
      output_size: features of ``y_t = H_t W_v + B_v`` (the next layer's input, or the vocabulary).
      cell: ``"rnn"`` (vanilla), ``"lstm"`` or ``"gru"``.
      weight_init: ``"book"`` (the book's scale 2 / (n_in + output_size) for every parameter),
        ``"glorot"`` or ``"standard"`` (see the module docstring).
      weight_scale: a fixed standard deviation for every parameter (the book's ``weight_scale`` argument);
        overrides ``weight_init``.

    Example: ``rnn_layer(256, 128, "rnn")`` then ``rnn_layer(256, vocab, "lstm")`` stack (book ch. 6).
    """
    the_cell = get_cell(cell)
    for value, what in ((hidden_size, "hidden_size"), (output_size, "output_size")):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"rnn_layer: {what} must be a positive integer, got {value!r}")
    if weight_init not in WEIGHT_INITS:
        raise ValueError(f"rnn_layer: unknown weight_init {weight_init!r}; choose one of {WEIGHT_INITS}")
    name = f"{cell}(hidden {hidden_size} -> {output_size})"

    def init(key, input_shape, dtype=jnp.float32):
        if len(tuple(input_shape)) != 1:
            raise ValueError(f"{name}: input_shape is one time step's features, e.g. (vocab,), got {input_shape}")
        n_in = int(input_shape[0])
        shapes = {**the_cell.shapes(n_in, hidden_size), "W_v": (hidden_size, output_size), "B_v": (1, output_size)}
        keys = jax.random.split(key, len(shapes))
        params = {}
        for k, (pname, shape) in zip(keys, shapes.items(), strict=True):
            if weight_scale is not None:
                scale = weight_scale
            elif weight_init == "book":
                scale = 2.0 / (n_in + output_size)
            else:  # a bias takes its gate's input weight's scale (B_f: W_f, B_r: W_xr)
                w = shape if pname.startswith("W") else next(shapes[n] for n in ("W_" + pname[2:], "W_x" + pname[2:])
                                                             if n in shapes)
                scale = init_scale(weight_init, w[0], w[1])
            params[pname] = normal(k, shape, scale, dtype)
        return params

    def zero_state(dtype=jnp.float32):
        zeros = jnp.zeros((1, hidden_size), dtype)
        return the_cell.state(*([zeros] * len(the_cell.state._fields)))

    def apply(params, x, state, *, grad="manual"):
        expect_rank(x, 3, name, "(batch, sequence_length, features)")
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(f"{name}: expected floating-point inputs (e.g. one-hot characters), got {x.dtype}")
        n_in = params["W_xr"].shape[0] if "W_xr" in params else params["W_f"].shape[0] - hidden_size
        if x.shape[-1] != n_in:
            raise ValueError(f"{name}: expected {n_in} input features (from the params), got x of shape {x.shape}")
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(f"{name}: expected a non-empty batch and sequence, got x of shape {x.shape}")
        if not isinstance(state, the_cell.state):
            raise TypeError(f"{name}: state must be a {the_cell.state.__name__}, got {type(state).__name__}")
        for field, s in zip(state._fields, state, strict=True):
            if s.ndim != 2 or s.shape[-1] != hidden_size or s.shape[0] not in (1, x.shape[0]):
                raise ValueError(f"{name}: state.{field} must be (1, {hidden_size}) or ({x.shape[0]}, "
                                 f"{hidden_size}), got {s.shape}")
        y, last = run(the_cell, params, x, state, grad=grad)
        return y, jax.lax.stop_gradient(jax.tree.map(lambda s: s.mean(0, keepdims=True), last))

    def output_shape(input_shape):
        return (output_size,)

    return RecurrentLayer(init, apply, zero_state, output_shape, the_cell, hidden_size, output_size, name)
