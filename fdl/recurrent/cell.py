"""What a recurrent layer needs from a cell (book ch. 6), and the book's layer loop over a node.

A cell is a :class:`Cell` of five members: its ``name``, the declaration of its parameters
(``param_specs``: a :class:`ParamSpec` per parameter, with its shape and fans), its ``state`` type, and a
``forward`` and ``backward`` over a whole sequence. The layer (:mod:`fdl.recurrent.layers`) draws the params
from the declaration alone, and wraps ``forward`` and ``backward`` into one ``jax.custom_vjp``; ``jax.grad``
differentiates ``forward`` alone.

Every cell comes in two implementations of the same equations, tested equal to each other and to ``jax.grad``:

* **node** (readable, ``impl="node"``): the book's node, one time step, written line for line beside
  ``RNNNode``, ``LSTMNode`` and ``GRUNode`` (:mod:`~fdl.recurrent.rnn_cell`, :mod:`~fdl.recurrent.lstm_cell`,
  :mod:`~fdl.recurrent.gru_cell`): ``node(params, x, state) -> (y, state, cache)`` and
  ``node_backward(params, cache, dy, dstate) -> (dx, dstate, grads)``, the output projection
  ``y = H W_v + B_v`` included as in the book. :func:`from_node` runs them as the book's layer does: forward
  over the steps, then the node backward over the steps in reverse, adding up each step's weight gradients
  (the book's ``params['W_f']['deriv'] += ...``).
* **fused** (fast, ``impl="fused"``, the layers' default): the same step with the gates' weights side by side
  in one matrix, the input projection and the weight gradients of all steps each one matrix product outside
  the loop (:mod:`fdl.recurrent._fused`). It trains faster on XLA:CPU (docs/performance.md has the measured
  ratio).

Shapes (time-major, as ``lax.scan`` wants them): ``xs`` (T, batch, in), ``ys`` (T, batch, out), every state
field (batch, hidden). ``backward`` returns every gradient in its primal's dtype (the ``custom_vjp`` contract).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp


class ParamSpec(NamedTuple):
    """One parameter a cell declares: its book name, its shape, the fans an initialiser scales it by, its kind.

    ``kind`` is ``"weight"`` or ``"bias"`` (:func:`fdl.recurrent.rnn_layer` draws weights with its
    ``weight_init`` and biases with its ``bias_init``). A bias takes the fans of the weight it is added to.
    A plain container: nothing is checked here.
    """

    name: str
    shape: tuple
    fan_in: int
    fan_out: int
    kind: str = "weight"


def weight(name: str, fan_in: int, fan_out: int) -> ParamSpec:
    """A weight matrix ``(fan_in, fan_out)``: inputs on the rows, as every fdl kernel (book: ``x W``)."""
    return ParamSpec(name, (fan_in, fan_out), fan_in, fan_out, "weight")


def bias(name: str, of: ParamSpec) -> ParamSpec:
    """The bias ``(1, fan_out)`` added to ``x of``; it takes ``of``'s fans (book: ``x W + B``)."""
    return ParamSpec(name, (1, of.fan_out), of.fan_in, of.fan_out, "bias")


def output_projection(hidden: int, n_out: int) -> tuple[ParamSpec, ParamSpec]:
    """``W_v`` (hidden, n_out) and ``B_v`` (1, n_out) of ``y = H W_v + B_v``, every cell's last two params."""
    W_v = weight("W_v", hidden, n_out)
    return W_v, bias("B_v", W_v)


def shapes(specs) -> dict:
    """``{name: shape}`` of a declaration (a sequence of :class:`ParamSpec`), in declared order."""
    return {p.name: p.shape for p in specs}


class RNNState(NamedTuple):
    """State of a vanilla RNN or GRU layer: the hidden state ``H`` (batch or 1, hidden).

    The book's ch. 6 ``start_H``, carried between batches as its batch mean, (1, hidden). A plain container:
    nothing is checked here (the layer's ``apply`` checks the shapes).
    """

    H: jax.Array


class LSTMState(NamedTuple):
    """State of an LSTM layer: hidden state ``H`` and cell state ``C``, each (batch or 1, hidden).

    The book's ch. 6 ``start_H`` and ``start_C``. A plain container: nothing is checked here (the layer's
    ``apply`` checks the shapes).
    """

    H: jax.Array
    C: jax.Array


class Cell(NamedTuple):
    """One kind of recurrent cell, as :func:`fdl.recurrent.rnn_layer` runs it over a sequence.

    Attributes:
      name: ``"rnn"``, ``"lstm"``, ``"gru"``; ``"_fused"`` appended for the fused implementation.
      param_specs: ``(n_in, hidden, n_out) -> tuple of ParamSpec``: every parameter ``forward`` uses, the
        output projection ``W_v, B_v`` last, in the order the layer splits its key. The first one takes the
        input on its rows (``W_f`` (n_in + hidden, hidden) or ``W_xr`` (n_in, hidden)), so a layer reads
        ``n_in`` from it.
      state: the state type, :class:`RNNState` or :class:`LSTMState`.
      forward: ``(params, xs, state0) -> (ys, last_state, residuals)`` over all steps; ``xs`` (T, batch, in),
        ``state0`` fields (batch, hidden); ``ys`` (T, batch, out) with ``y_t = H_t W_v + B_v``.
      backward: ``(params, residuals, dys, dlast) -> (grads, dxs, dstate0)``: the hand-written
        backpropagation through time; ``grads`` a dict like ``params``, each in its param's dtype.
    """

    name: str
    param_specs: Callable
    state: type
    forward: Callable
    backward: Callable


def cast_like(tree, like):
    """``tree`` with every leaf cast to the dtype of the matching leaf of ``like`` (shapes unchanged).

    Infrastructure for the ``custom_vjp`` dtype contract (no book counterpart). Raises ValueError (from
    ``jax.tree.map``) if the two trees have different structures.
    """
    return jax.tree.map(lambda a, b: a.astype(b.dtype), tree, like)


def from_node(name: str, param_specs: Callable, state: type, node: Callable, node_backward: Callable) -> Cell:
    """The cell that runs ``node`` step by step, as the book's RNNLayer runs its nodes (the readable form).

    ``forward``: ``lax.scan`` of ``node`` over the time axis, keeping each step's cache (the book's node
    objects, one per step, hold the same values on ``self``). ``backward``: a reverse scan of
    ``node_backward`` carrying ``dstate`` to the step before and the running sum of the weight gradients.

    Shapes as :class:`Cell` documents (time-major ``xs`` (T, batch, in)); the weight gradients come back in the
    params' dtypes, ``dxs`` in ``xs``'s dtype, ``dstate0`` in ``state0``'s. Nothing is checked here: errors
    come from ``node`` / ``node_backward`` or from ``lax.scan`` (e.g. a node that changes the state's shape
    or dtype raises TypeError).
    """

    def forward(params, xs, state0):
        def step(state, x):
            y, state, cache = node(params, x, state)
            return state, (y, cache)

        last, (ys, caches) = jax.lax.scan(step, state0, xs)
        return ys, last, (xs, state0, caches)

    def backward(params, residuals, dys, dlast):
        xs, state0, caches = residuals

        def step(carry, inputs):
            grads, dstate = carry
            cache, dy = inputs
            dx, dstate, step_grads = node_backward(params, cache, dy, dstate)
            grads = jax.tree.map(jnp.add, grads, cast_like(step_grads, params))  # the book's `deriv +=`
            return (grads, cast_like(dstate, state0)), dx.astype(xs.dtype)

        zero = jax.tree.map(jnp.zeros_like, params)
        (grads, dstate0), dxs = jax.lax.scan(step, (zero, cast_like(dlast, state0)), (caches, dys), reverse=True)
        return grads, dxs, dstate0

    return Cell(name, param_specs, state, forward, backward)
