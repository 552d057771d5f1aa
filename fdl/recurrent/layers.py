"""Recurrent layers over a whole sequence and their hand-written backpropagation through time (book ch. 6).

A layer runs its cell (:mod:`fdl.recurrent.cells`) over the time axis, the output projection
``y_t = H_t W_v + B_v`` at every step included (book: RNNLayer/GRULayer/LSTMLayer).

``grad="manual"`` differentiates the layer with the cell's hand-written ``backward``, wrapped as the
``jax.custom_vjp`` of its ``forward`` (:func:`_bptt`): a reverse scan runs the book's node backward for every
step, carrying only ``dH`` (and ``dC``). ``grad="autodiff"`` lets ``jax.grad`` differentiate the same forward.

``impl`` picks the cell's implementation: ``"fused"`` (default: the gates side by side, the per-step weight
products taken out of the loop; faster) or ``"node"`` (the book's node step by step, line for line; see
:mod:`fdl.recurrent.cell`). Both compute the same numbers and use the same parameter names.

The start state is explicit: ``apply(params, x, state) -> (y, next_state)``. As the book does
(``self.start_H = H.mean(axis=0, keepdims=True)``), ``next_state`` is the batch mean of the last state, of
shape (1, hidden), with ``stop_gradient``: the next batch starts from it and no gradient crosses batches.
``zero_state()`` is a fresh start.

Initialisation. The cell declares its parameters, each with its shape and fans
(:class:`~fdl.recurrent.cell.ParamSpec`); the layer draws them all in one place (:mod:`fdl.recurrent.params`),
splitting its key once per parameter in declared order. By default (``weight_init=None``) every parameter,
biases included, is drawn from ``N(0, s^2)`` with the book's ``s = weight_scale``, which defaults to
``2 / (n_in + output_size)`` with ``n_in`` the layer's input features (the book's RNNLayer._init_params:
fdl.init's ``"book_glorot"`` scale of the layer's fans, erratum 5). A named ``weight_init`` of :mod:`fdl.init`
(``"glorot"``, ``"book_glorot"``, ...) or a function ``init(key, shape, dtype)`` draws each matrix with its own
declared fans instead, and biases as :func:`fdl.dense` does (``bias_init``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from .._checks import expect_rank
from ..ops._op import check_grad_mode
from .cells import Cell, get_cell
from .params import init_params, initialisers, input_features


class RecurrentLayer(NamedTuple):
    """``init``, ``apply``, ``zero_state`` and ``output_shape`` of a recurrent layer.

    * ``init(key, input_shape, dtype=float32) -> params``; ``input_shape`` is one time step's features,
      e.g. ``(vocab,)``; params use the book's names (``W_f, B_f, ..., W_v, B_v``).
    * ``apply(params, x, state, *, grad="manual") -> (y, next_state)``; ``x`` (batch, T, in),
      ``y`` (batch, T, output_size).
    * ``zero_state(dtype=float32)``: the state of shape (1, hidden) with zeros.

    Book ch. 6: RNNLayer, LSTMLayer, GRULayer. Built by :func:`rnn_layer`, which lists the errors
    ``init`` and ``apply`` raise.
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


def _time_major(params, x, state0):
    """``x`` as (T, batch, in) and the start state broadcast to (batch, hidden) in the computation's dtype."""
    dtype = jnp.result_type(x, *jax.tree.leaves(params))
    state0 = jax.tree.map(lambda s: jnp.broadcast_to(s, (x.shape[0], s.shape[-1])).astype(dtype), state0)
    return jnp.swapaxes(x, 0, 1), state0


def _reduce_to(d, like):
    """Sum the gradient of a broadcast start state back to its shape ((1, hidden) or (batch, hidden))."""
    d = d.sum(0, keepdims=True) if like.shape[0] == 1 and d.shape[0] != 1 else d
    return d.astype(like.dtype)


@functools.cache
def _bptt(cell: Cell) -> Callable:
    """``f(params, x, state0) -> (y, last_state)`` with ``cell.backward`` (the hand-written BPTT) as its VJP."""

    def forward(params, x, state0):
        xs, s0 = _time_major(params, x, state0)
        ys, last, _ = cell.forward(params, xs, s0)
        return jnp.swapaxes(ys, 0, 1), last

    def fwd(params, x, state0):
        xs, s0 = _time_major(params, x, state0)
        ys, last, res = cell.forward(params, xs, s0)
        return (jnp.swapaxes(ys, 0, 1), last), (params, state0, jnp.zeros((0,), x.dtype), res)

    def bwd(residuals, cotangents):
        params, state0, x_like, res = residuals
        dy, dlast = cotangents
        grads, dxs, dstate0 = cell.backward(params, res, jnp.swapaxes(dy, 0, 1), dlast)
        if set(grads) != set(params):
            raise ValueError(
                f"{cell.name}: backward returned gradients for {sorted(grads)}, expected the params {sorted(params)}"
            )
        grads = {k: grads[k].astype(params[k].dtype) for k in params}
        dx = jnp.swapaxes(dxs, 0, 1).astype(x_like.dtype)
        return grads, dx, jax.tree.map(_reduce_to, dstate0, state0)

    f = jax.custom_vjp(forward)
    f.defvjp(fwd, bwd)
    return f


def run(cell: Cell, params, x, state0, *, grad: str = "manual"):
    """Run ``cell`` over ``x`` (batch, T, in) from ``state0``: ``(y (batch, T, out), last state (batch, hidden))``.

    ``grad="manual"``: the cell's hand-written backward; ``"autodiff"``: ``jax.grad`` of ``cell.forward``.
    The book's RNNLayer / LSTMLayer / GRULayer forward and backward over the sequence (ch. 6). ``state0``'s
    fields may be (1, hidden) (broadcast over the batch) or (batch, hidden); the outputs are in the promoted
    dtype of x and the params, the gradients in each input's own dtype.

    Raises:
      ValueError: a ``grad`` other than ``"manual"`` / ``"autodiff"``; on the manual path, when the gradient
        is taken, a cell backward that returns gradients for other params than the cell has. Shapes are not
        checked here (the layer's ``apply`` checks them).
    """
    if check_grad_mode(grad) == "manual":
        return _bptt(cell)(params, x, state0)
    ys, last, _ = cell.forward(params, *_time_major(params, x, state0))
    return jnp.swapaxes(ys, 0, 1), last


def rnn_layer(
    hidden_size: int,
    output_size: int,
    cell: str = "lstm",
    *,
    weight_init: str | Callable | None = None,
    bias_init: str | Callable | None = None,
    weight_scale: float | None = None,
    impl: str = "fused",
) -> RecurrentLayer:
    """A recurrent layer (book: RNNLayer, GRULayer, LSTMLayer with ``hidden_size``, ``output_size``).

    Args:
      hidden_size: units of the hidden (and cell) state.
      output_size: features of ``y_t = H_t W_v + B_v`` (the next layer's input, or the vocabulary).
      cell: ``"rnn"`` (vanilla), ``"lstm"`` or ``"gru"``.
      weight_init: ``None`` (the book's rule: every parameter N(0, weight_scale^2); ``"book"`` is an alias),
        ``"standard"``, ``"glorot"``, ``"book_glorot"``, ``"pytorch_uniform"``, ``"zeros"`` or a function
        ``init(key, shape, dtype)`` (see :mod:`fdl.init`), each matrix with the fans its cell declares
        (:class:`~fdl.recurrent.cell.ParamSpec`; e.g. the LSTM's ``W_f``: ``(n_in + hidden, hidden)``).
      bias_init: ``None`` (as the weights: the same rule, or zeros after a function ``weight_init``), a name or
        a function; a bias has the fans of the weight it is added to.
      weight_scale: the book's ``weight_scale``, with ``weight_init=None`` only; default
        ``2 / (n_in + output_size)``.
      impl: ``"fused"`` (the fast form, default) or ``"node"`` (the book's node step by step, the readable
        form); same params, same numbers (see :mod:`fdl.recurrent.cells`).

    Params: ``cell.param_specs(n_in, hidden_size, output_size)``'s names and shapes, in the ``dtype`` given to
    ``init`` (float32 by default).

    Raises:
      ValueError: at construction, a size that is not a positive integer, an unknown ``cell``, ``impl`` or
        initialiser name (the message lists the names), a ``weight_scale`` given with a ``weight_init``; from
        ``init``, an ``input_shape`` that is not one step's ``(features,)`` or an initialiser function that
        returns another shape; from ``apply``, params of other names or shapes than the cell declares, an x
        that is not 3-D (batch, T, features), whose feature count differs from the params', or with an empty
        batch or sequence, a state field not (1, hidden) or (batch, hidden), or an unknown ``grad``.
      TypeError: at construction, an initialiser neither a name nor a function; from ``apply``, a non-floating
        x, or a state of the wrong type (e.g. an ``RNNState`` for an LSTM layer).

    Example: ``rnn_layer(256, 128, "rnn")`` then ``rnn_layer(256, vocab, "lstm")`` stack (book ch. 6).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from fdl.recurrent import stack
        >>> model = stack(rnn_layer(8, 5, "lstm"))  # 8 hidden units, 5 outputs
        >>> params = model.init(jax.random.key(0), (5,))
        >>> logits, states = model.apply(params, jnp.zeros((2, 7, 5)), model.zero_state())
        >>> logits.shape
        (2, 7, 5)
        >>> rnn_layer(8, 5, "gru", weight_init="glorot").init(jax.random.key(0), (5,))["W_hr"].shape
        (8, 8)
    """
    the_cell = get_cell(cell, impl)
    for value, what in ((hidden_size, "hidden_size"), (output_size, "output_size")):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"rnn_layer: {what} must be a positive integer, got {value!r}")
    rules = initialisers(weight_init, bias_init, weight_scale, output_size)
    label = cell if impl == "fused" else f"{cell}[{impl}]"
    name = f"{label}(hidden {hidden_size} -> {output_size})"
    specs = functools.partial(the_cell.param_specs, hidden=hidden_size, n_out=output_size)

    def init(key, input_shape, dtype=jnp.float32):
        if len(tuple(input_shape)) != 1:
            raise ValueError(f"{name}: input_shape is one time step's features, e.g. (vocab,), got {input_shape}")
        n_in = int(input_shape[0])
        return init_params(specs(n_in), key, *rules(n_in), dtype, name)

    def zero_state(dtype=jnp.float32):
        zeros = jnp.zeros((1, hidden_size), dtype)
        return the_cell.state(*([zeros] * len(the_cell.state._fields)))

    def apply(params, x, state, *, grad="manual"):
        expect_rank(x, 3, name, "(batch, sequence_length, features)")
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(f"{name}: expected floating-point inputs (e.g. one-hot characters), got {x.dtype}")
        n_in = input_features(specs, params, name)
        if x.shape[-1] != n_in:
            raise ValueError(f"{name}: expected {n_in} input features (from the params), got x of shape {x.shape}")
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(f"{name}: expected a non-empty batch and sequence, got x of shape {x.shape}")
        if not isinstance(state, the_cell.state):
            raise TypeError(f"{name}: state must be a {the_cell.state.__name__}, got {type(state).__name__}")
        for field, s in zip(state._fields, state, strict=True):
            if s.ndim != 2 or s.shape[-1] != hidden_size or s.shape[0] not in (1, x.shape[0]):
                raise ValueError(
                    f"{name}: state.{field} must be (1, {hidden_size}) or ({x.shape[0]}, {hidden_size}), got {s.shape}"
                )
        y, last = run(the_cell, params, x, state, grad=grad)
        return y, jax.lax.stop_gradient(jax.tree.map(lambda s: s.mean(0, keepdims=True), last))

    def output_shape(input_shape):
        return (output_size,)

    return RecurrentLayer(init, apply, zero_state, output_shape, the_cell, hidden_size, output_size, name)
