"""Recurrent cells (book ch. 6: RNNNode, GRUNode, LSTMNode): one time step forward, one time step backward.

Each cell is written twice:

* ``node(params, state, x) -> state``: the book's node with its own parameter names, unfused, one step.
  It is the readable statement of the equations and the reference the layer is tested against.
* a fused form used by the layer (:mod:`fdl.recurrent.layers`): the input projection of *all* steps,
  ``x @ W_x + B``, is one matrix product before the scan; the scan body (``step``) adds only ``H @ W_h``
  and applies the gates; ``step_backward`` is the book's node backward for one step, carrying only ``dH``
  (and ``dC``), and returns the gradient of the pre-activations. Every factor of it that does not depend on
  the carried gradients (the activations' slopes, products of saved gates) is computed for all steps at once
  before the reverse scan by ``backward_terms``, so the RNN's and LSTM's scan body is one elementwise op and
  one matrix product per step. ``param_grads`` turns the pre-activation gradients of all steps into the
  book's weight gradients with one matrix product per weight (the book adds ``param_grad`` step by step:
  ``W.deriv += ...`` in every node).

Shapes: ``x`` (batch, in), ``H``/``C`` (batch, hidden); weights as the book: the RNN and LSTM multiply
``Z = [x, H]`` by ``W_*`` of shape (in + hidden, hidden); the GRU has separate input (in, hidden) and
hidden (hidden, hidden) weights. Biases are (1, hidden).

Erratum 2: the book's GRUNode computes the update gate from the reset gate's inputs (``X_r + H_r``) and its
backward drops the update gate's own term, so no GRU weight learns. Here the update gate uses ``W_xu, W_hu,
B_u`` and the backward is the derivative of the equations below (checked against ``jax.grad``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

sigmoid = jax.nn.sigmoid


class RNNState(NamedTuple):
    """State of a vanilla RNN or GRU layer: the hidden state ``H`` (batch or 1, hidden)."""

    H: jax.Array


class LSTMState(NamedTuple):
    """State of an LSTM layer: hidden state ``H`` and cell state ``C``, each (batch or 1, hidden)."""

    H: jax.Array
    C: jax.Array


class Cell(NamedTuple):
    """Everything a layer needs to know about one kind of cell (see the module docstring)."""

    name: str
    shapes: callable          # (n_in, hidden) -> {book name: shape}, W_v/B_v excluded
    state: type               # RNNState or LSTMState
    node: callable            # the book's step, unfused
    fuse: callable            # (params, n_in) -> (W_x, B, recurrent weights)
    step: callable            # (recurrent weights, state, xp_t) -> (state, saved_t)
    backward_terms: callable  # (saved, prev states, states), all steps -> the step backward's per-step terms
    step_backward: callable   # (transposed recurrent weights, dstate, (dH_t, terms_t)) -> (dprev, dpre_t)
    param_grads: callable     # (X, prev states, states, saved, dpre, n_in, hidden) -> {book name: grad}


def _split(a, n):
    return jnp.split(a, n, axis=-1)


def _rows(dW_x, dW_h, n):
    """The book's (in + hidden, hidden) weights from the input and hidden halves of fused gradients."""
    return [jnp.concatenate([a, b], axis=0) for a, b in zip(_split(dW_x, n), _split(dW_h, n), strict=True)]


def _cols(bias, n):
    return [b for b in _split(bias, n)]


# ---------------------------------------------------------------------------------------------------- RNN

def _rnn_shapes(n_in, h):
    return {"W_f": (n_in + h, h), "B_f": (1, h)}


def _rnn_node(params, state, x):
    """``Z = [x, H]; H' = tanh(Z W_f + B_f)`` (book: RNNNode.forward)."""
    z = jnp.concatenate([x, state.H], axis=-1)
    return RNNState(jnp.tanh(z @ params["W_f"] + params["B_f"]))


def _rnn_fuse(params, n_in):
    return params["W_f"][:n_in], params["B_f"], params["W_f"][n_in:]


def _rnn_step(W_h, state, xp):
    H = jnp.tanh(xp + state.H @ W_h)
    return RNNState(H), ()


def _rnn_backward_terms(saved, prev, states):
    return 1.0 - states.H ** 2                                  # tanh's slope at every step


def _rnn_step_backward(W_hT, dstate, inputs):
    """``dA = dH' (1 - H'^2)``; ``dH = dA W_h^T`` (book: RNNNode.backward, the ``dtanh`` and ``dz`` lines)."""
    dH_out, slope = inputs
    dA = (dstate.H + dH_out) * slope
    return RNNState(dA @ W_hT), dA


def _rnn_param_grads(X, prev, states, saved, dA, n_in, h):
    return {"W_f": jnp.concatenate([X.T @ dA, prev.H.T @ dA], axis=0), "B_f": dA.sum(0, keepdims=True)}


RNN = Cell("rnn", _rnn_shapes, RNNState, _rnn_node, _rnn_fuse, _rnn_step, _rnn_backward_terms, _rnn_step_backward,
           _rnn_param_grads)

# --------------------------------------------------------------------------------------------------- LSTM

_LSTM_GATES = ("f", "i", "c", "o")


def _lstm_shapes(n_in, h):
    shapes = {}
    for g in _LSTM_GATES:
        shapes[f"W_{g}"] = (n_in + h, h)
        shapes[f"B_{g}"] = (1, h)
    return shapes


def _lstm_node(params, state, x):
    """The book's LSTMNode.forward.

    ``Z = [x, H]``; ``f = s(Z W_f + B_f)``, ``i = s(Z W_i + B_i)``, ``C~ = tanh(Z W_c + B_c)``,
    ``o = s(Z W_o + B_o)``; ``C' = f C + i C~``; ``H' = o tanh(C')``.
    """
    z = jnp.concatenate([x, state.H], axis=-1)
    f = sigmoid(z @ params["W_f"] + params["B_f"])
    i = sigmoid(z @ params["W_i"] + params["B_i"])
    c_bar = jnp.tanh(z @ params["W_c"] + params["B_c"])
    o = sigmoid(z @ params["W_o"] + params["B_o"])
    C = f * state.C + i * c_bar
    return LSTMState(o * jnp.tanh(C), C)


def _lstm_fuse(params, n_in):
    W_x = jnp.concatenate([params[f"W_{g}"][:n_in] for g in _LSTM_GATES], axis=1)
    W_h = jnp.concatenate([params[f"W_{g}"][n_in:] for g in _LSTM_GATES], axis=1)
    B = jnp.concatenate([params[f"B_{g}"] for g in _LSTM_GATES], axis=1)
    return W_x, B, W_h


def _lstm_gate_constants(h, dtype, ndim=2):
    """Per-column constants of the fused gates ``[f, i, C~, o]`` (each ``h`` wide).

    ``sigmoid(a) = 0.5 tanh(0.5 a) + 0.5``, so all four activations are one elementwise op over the fused
    pre-activations, ``g = scale * tanh(scale * a) + shift`` with ``scale = shift = 0.5`` on the sigmoid gates
    and ``scale = 1, shift = 0`` on ``C~``. Their slopes ``dg/da`` are ``g(1 - g)`` and ``1 - g^2``, both
    ``r + g (q - g)`` with ``(q, r) = (1, 0)`` and ``(0, 1)``. (XLA:CPU runs one full-width op per step much
    faster than four quarter-width ones: tested equal, measured in the README's Performance section.)
    """
    sig = jnp.repeat(jnp.array([1.0, 1.0, 0.0, 1.0], dtype), h).reshape((1,) * (ndim - 1) + (4 * h,))
    scale, shift = 1.0 - 0.5 * sig, 0.5 * sig
    return scale, shift, sig, 1.0 - sig


def _lstm_step(W_h, state, xp):
    scale, shift, _, _ = _lstm_gate_constants(state.H.shape[-1], xp.dtype, xp.ndim)
    gates = scale * jnp.tanh(scale * (xp + state.H @ W_h)) + shift   # [f, i, C~, o] = [s, s, tanh, s](a)
    f, i, c_bar, o = _split(gates, 4)
    C = f * state.C + i * c_bar
    return LSTMState(o * jnp.tanh(C), C), gates


def _lstm_backward_terms(gates, prev, states):
    """For all steps: ``P = [C, C~, i, tanh(C')] * slopes of [f, i, C~, o]``, ``E = o (1 - tanh(C')^2)``, ``f``."""
    _, _, q, r = _lstm_gate_constants(prev.C.shape[-1], gates.dtype, gates.ndim)
    f, i, c_bar, o = _split(gates, 4)
    tanh_C = jnp.tanh(states.C)
    P = jnp.concatenate([prev.C, c_bar, i, tanh_C], axis=-1) * (r + gates * (q - gates))
    return P, o * (1.0 - tanh_C ** 2), f


def _lstm_step_backward(W_hT, dstate, inputs):
    """The book's LSTMNode.backward for one step, carrying ``(dH, dC)`` to the step before.

    ``dC' = dC + dH' o (1 - tanh(C')^2)``; gate pre-activations: ``df = dC' C f(1-f)``,
    ``di = dC' C~ i(1-i)``, ``dc = dC' i (1-C~^2)``, ``do = dH' tanh(C') o(1-o)``, i.e.
    ``[df, di, dc, do] = [dC', dC', dC', dH'] * P`` with ``P`` from :func:`_lstm_backward_terms`;
    ``dH = [df, di, dc, do] W_h^T``; ``dC = dC' f``.
    """
    dH_out, (P, E, f) = inputs
    dH = dstate.H + dH_out
    dC = dstate.C + dH * E
    dpre = jnp.concatenate([dC, dC, dC, dH], axis=-1) * P
    return LSTMState(dpre @ W_hT, dC * f), dpre


def _lstm_param_grads(X, prev, states, saved, dpre, n_in, h):
    W = _rows(X.T @ dpre, prev.H.T @ dpre, 4)
    B = _cols(dpre.sum(0, keepdims=True), 4)
    grads = {}
    for g, dW, dB in zip(_LSTM_GATES, W, B, strict=True):
        grads[f"W_{g}"], grads[f"B_{g}"] = dW, dB
    return grads


LSTM = Cell("lstm", _lstm_shapes, LSTMState, _lstm_node, _lstm_fuse, _lstm_step, _lstm_backward_terms,
            _lstm_step_backward, _lstm_param_grads)

# ---------------------------------------------------------------------------------------------------- GRU


def _gru_shapes(n_in, h):
    return {"W_xr": (n_in, h), "W_hr": (h, h), "B_r": (1, h),
            "W_xu": (n_in, h), "W_hu": (h, h), "B_u": (1, h),
            "W_xh": (n_in, h), "W_hh": (h, h), "B_h": (1, h)}


def _gru_node(params, state, x):
    """The GRU step with its update gate on its own weights (book: GRUNode.forward, erratum 2 fixed).

    ``r = s(x W_xr + H W_hr + B_r)``, ``u = s(x W_xu + H W_hu + B_u)``,
    ``h~ = tanh(x W_xh + (r H) W_hh + B_h)``, ``H' = u H + (1 - u) h~``.
    """
    H = state.H
    r = sigmoid(x @ params["W_xr"] + H @ params["W_hr"] + params["B_r"])
    u = sigmoid(x @ params["W_xu"] + H @ params["W_hu"] + params["B_u"])
    h_bar = jnp.tanh(x @ params["W_xh"] + (r * H) @ params["W_hh"] + params["B_h"])
    return RNNState(u * H + (1.0 - u) * h_bar)


def _gru_fuse(params, n_in):
    W_x = jnp.concatenate([params["W_xr"], params["W_xu"], params["W_xh"]], axis=1)
    B = jnp.concatenate([params["B_r"], params["B_u"], params["B_h"]], axis=1)
    W_h = jnp.concatenate([params["W_hr"], params["W_hu"]], axis=1)
    return W_x, B, (W_h, params["W_hh"])


def _gru_step(weights, state, xp):
    W_h, W_hh = weights
    H = state.H
    x_r, x_u, x_h = _split(xp, 3)
    h_r, h_u = _split(H @ W_h, 2)
    r, u = sigmoid(x_r + h_r), sigmoid(x_u + h_u)
    h_bar = jnp.tanh(x_h + (r * H) @ W_hh)
    return RNNState(u * H + (1.0 - u) * h_bar), jnp.concatenate([r, u, h_bar], axis=-1)


def _gru_step_backward(weights_T, dstate, inputs):
    """The GRU node's backward for one step, carrying ``dH``.

    ``dh~ = dH' (1 - u)(1 - h~^2)``; ``du = dH' (H - h~) u(1-u)``; ``d(rH) = dh~ W_hh^T``;
    ``dr = d(rH) H r(1-r)``; ``dH = dH' u + d(rH) r + [dr, du] [W_hr, W_hu]^T``.
    """
    W_hT, W_hhT = weights_T
    dH_out, (gates, prev) = inputs
    r, u, h_bar = _split(gates, 3)
    H = prev.H
    dH_new = dstate.H + dH_out
    d_h = dH_new * (1.0 - u) * (1.0 - h_bar ** 2)
    d_u = dH_new * (H - h_bar) * u * (1.0 - u)
    d_rH = d_h @ W_hhT
    d_r = d_rH * H * r * (1.0 - r)
    d_ru = jnp.concatenate([d_r, d_u], axis=-1)
    dH = dH_new * u + d_rH * r + d_ru @ W_hT
    return RNNState(dH), jnp.concatenate([d_ru, d_h], axis=-1)


def _gru_param_grads(X, prev, states, gates, dpre, n_in, h):
    dW_x = _split(X.T @ dpre, 3)
    dB = _cols(dpre.sum(0, keepdims=True), 3)
    dW_hr, dW_hu = _split(prev.H.T @ dpre[:, :2 * h], 2)
    r = gates[:, :h]
    return {"W_xr": dW_x[0], "W_hr": dW_hr, "B_r": dB[0],
            "W_xu": dW_x[1], "W_hu": dW_hu, "B_u": dB[1],
            "W_xh": dW_x[2], "W_hh": (r * prev.H).T @ dpre[:, 2 * h:], "B_h": dB[2]}


def _gru_backward_terms(gates, prev, states):
    return gates, prev


GRU = Cell("gru", _gru_shapes, RNNState, _gru_node, _gru_fuse, _gru_step, _gru_backward_terms, _gru_step_backward,
           _gru_param_grads)

CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


def get_cell(name: str) -> Cell:
    try:
        return CELLS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown cell {name!r}; choose one of {sorted(CELLS)}") from None
