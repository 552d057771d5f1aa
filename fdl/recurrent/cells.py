"""Recurrent cells (book ch. 6: RNNNode, GRUNode, LSTMNode): one time step forward, one time step backward.

Each cell is written twice:

* ``node(params, state, x) -> state``: the book's node with its own parameter names, unfused, one step.
  It is the readable statement of the equations and the reference the layer is tested against.
* a fused form used by the layer (:mod:`fdl.recurrent.layers`): the input projection of *all* steps,
  ``x @ W_x + B``, is one matrix product before the scan; the scan body (``step``) adds only ``H @ W_h``
  and applies the gates; ``step_backward`` is the book's node backward for one step on what the forward
  saved, carrying only ``dH`` (and ``dC``), and returns the gradient of the pre-activations; ``param_grads``
  turns the pre-activation gradients of all steps into the book's weight gradients with one matrix product
  per weight (the book adds ``param_grad`` step by step: ``W.deriv += ...`` in every node).

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
    step_backward: callable   # (transposed recurrent weights, dstate, (dH_t, saved_t, prev_t, state_t))
    #                           -> (dprev, dpre_t)
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


def _rnn_step_backward(W_hT, dstate, inputs):
    """``dA = dH' (1 - H'^2)``; ``dH = dA W_h^T`` (book: RNNNode.backward, the ``dtanh`` and ``dz`` lines)."""
    dH_out, _, _, state = inputs
    dA = (dstate.H + dH_out) * (1.0 - state.H ** 2)
    return RNNState(dA @ W_hT), dA


def _rnn_param_grads(X, prev, states, saved, dA, n_in, h):
    return {"W_f": jnp.concatenate([X.T @ dA, prev.H.T @ dA], axis=0), "B_f": dA.sum(0, keepdims=True)}


RNN = Cell("rnn", _rnn_shapes, RNNState, _rnn_node, _rnn_fuse, _rnn_step, _rnn_step_backward, _rnn_param_grads)

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


def _lstm_step(W_h, state, xp):
    a_f, a_i, a_c, a_o = _split(xp + state.H @ W_h, 4)
    f, i, c_bar, o = sigmoid(a_f), sigmoid(a_i), jnp.tanh(a_c), sigmoid(a_o)
    C = f * state.C + i * c_bar
    gates = jnp.concatenate([f, i, c_bar, o], axis=-1)
    return LSTMState(o * jnp.tanh(C), C), gates


def _lstm_step_backward(W_hT, dstate, inputs):
    """The book's LSTMNode.backward for one step, carrying ``(dH, dC)`` to the step before.

    ``dC' = dC + dH' o (1 - tanh(C')^2)``; gate pre-activations: ``df = dC' C f(1-f)``,
    ``di = dC' C~ i(1-i)``, ``dc = dC' i (1-C~^2)``, ``do = dH' tanh(C') o(1-o)``;
    ``dH = [df, di, dc, do] W_h^T``; ``dC = dC' f``.
    """
    dH_out, gates, prev, state = inputs
    f, i, c_bar, o = _split(gates, 4)
    dH = dstate.H + dH_out
    tanh_C = jnp.tanh(state.C)
    dC = dstate.C + dH * o * (1.0 - tanh_C ** 2)
    dpre = jnp.concatenate([dC * prev.C * f * (1.0 - f), dC * c_bar * i * (1.0 - i),
                            dC * i * (1.0 - c_bar ** 2), dH * tanh_C * o * (1.0 - o)], axis=-1)
    return LSTMState(dpre @ W_hT, dC * f), dpre


def _lstm_param_grads(X, prev, states, saved, dpre, n_in, h):
    W = _rows(X.T @ dpre, prev.H.T @ dpre, 4)
    B = _cols(dpre.sum(0, keepdims=True), 4)
    grads = {}
    for g, dW, dB in zip(_LSTM_GATES, W, B, strict=True):
        grads[f"W_{g}"], grads[f"B_{g}"] = dW, dB
    return grads


LSTM = Cell("lstm", _lstm_shapes, LSTMState, _lstm_node, _lstm_fuse, _lstm_step, _lstm_step_backward,
            _lstm_param_grads)

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
    dH_out, gates, prev, _ = inputs
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


GRU = Cell("gru", _gru_shapes, RNNState, _gru_node, _gru_fuse, _gru_step, _gru_step_backward, _gru_param_grads)

CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


def get_cell(name: str) -> Cell:
    try:
        return CELLS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown cell {name!r}; choose one of {sorted(CELLS)}") from None
