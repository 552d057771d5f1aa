"""The LSTM cell (book ch. 6, LSTMNode): one time step forward and backward, readable and fused.

Equations (``Z = [x, H_in]`` of shape (batch, in + hidden), ``s`` the sigmoid; every ``W_*`` is
(in + hidden, hidden), every ``B_*`` (1, hidden)):

    f = s(Z W_f + B_f)              forget gate
    i = s(Z W_i + B_i)              input gate
    C_bar = tanh(Z W_c + B_c)       candidate cell state
    C_out = f C_in + i C_bar
    o = s(Z W_o + B_o)              output gate
    H_out = o tanh(C_out)
    X_out = H_out W_v + B_v

Backward, given ``dX_out`` and ``dH_next``, ``dC_next`` arriving from the next step (``s' = s (1 - s)``,
``tanh' = 1 - tanh^2``; each ``*_int`` is a pre-activation, e.g. ``do_int`` the gradient of ``Z W_o + B_o``):

    dh_out = dX_out W_v^T + dH_next
    do = dh_out tanh(C_out);              do_int = o (1 - o) do
    dC_out = dh_out o tanh'(C_out) + dC_next
    dC_bar = dC_out i;                    dC_bar_int = (1 - C_bar^2) dC_bar
    di = dC_out C_bar;                    di_int = i (1 - i) di
    df = dC_out C_in;                     df_int = f (1 - f) df
    dW_g += Z^T dg_int;  dB_g += sum_rows dg_int      for each gate g in f, i, c, o
    dZ = df_int W_f^T + di_int W_i^T + dC_bar_int W_c^T + do_int W_o^T  =  [dx, dH_in]
    dC_in = f dC_out

:data:`LSTM` runs :func:`node`/:func:`node_backward` step by step (the readable form). :data:`LSTM_FUSED` is
the form the layers train with by default: the four gates side by side in one (in + hidden, 4 hidden)
matrix, the input projection and the weight gradients of all steps outside the loop, and every factor of the
backward that needs no carried gradient computed for all steps before the reverse scan, so its body is one
elementwise op and one matrix product per step.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from . import _fused
from .cell import Cell, LSTMState, ParamSpec, bias, from_node, output_projection, weight

sigmoid = jax.nn.sigmoid
GATES = ("f", "i", "c", "o")


def param_specs(n_in: int, hidden: int, n_out: int) -> tuple[ParamSpec, ...]:
    """For each gate g in f, i, c, o: ``W_g`` (n_in + hidden, hidden), ``B_g`` (1, hidden); then ``W_v``
    (hidden, n_out), ``B_v`` (1, n_out).

    Book ch. 6: LSTMNode's params. Each ``W_g`` acts on ``Z = [x, H]``: fans ``(n_in + hidden, hidden)``.
    """
    specs = []
    for g in GATES:
        W_g = weight(f"W_{g}", n_in + hidden, hidden)
        specs += [W_g, bias(f"B_{g}", W_g)]
    return (*specs, *output_projection(hidden, n_out))


class LSTMCache(NamedTuple):
    """What LSTMNode.forward keeps on ``self`` for its backward."""

    Z: jax.Array
    C_in: jax.Array
    f: jax.Array
    i: jax.Array
    C_bar: jax.Array
    C_out: jax.Array
    o: jax.Array
    H_out: jax.Array


def node(params, x, state: LSTMState):
    """One step, book LSTMNode.forward: ``x`` (batch, in), ``state`` (H, C) -> ``(X_out, LSTMState, cache)``.

    ``state.H`` and ``state.C`` (batch, hidden); ``X_out`` (batch, output_size); dtypes promoted from x, the
    state and the params. Nothing is checked (the layer's ``apply`` checks the shapes).
    """
    Z = jnp.concatenate([x, state.H], axis=-1)
    f = sigmoid(Z @ params["W_f"] + params["B_f"])
    i = sigmoid(Z @ params["W_i"] + params["B_i"])
    C_bar = jnp.tanh(Z @ params["W_c"] + params["B_c"])
    C_out = f * state.C + i * C_bar
    o = sigmoid(Z @ params["W_o"] + params["B_o"])
    H_out = o * jnp.tanh(C_out)
    X_out = H_out @ params["W_v"] + params["B_v"]
    return X_out, LSTMState(H_out, C_out), LSTMCache(Z, state.C, f, i, C_bar, C_out, o, H_out)


def node_backward(params, cache: LSTMCache, dX_out, dstate: LSTMState):
    """One step, book LSTMNode.backward: ``(dx, LSTMState(dH_in, dC_in), grads)``."""
    Z, C_in, f, i, C_bar, C_out, o, H_out = cache
    grads = {}
    grads["W_v"] = H_out.T @ dX_out
    grads["B_v"] = dX_out.sum(axis=0, keepdims=True)
    dh_out = dX_out @ params["W_v"].T + dstate.H

    do = dh_out * jnp.tanh(C_out)
    do_int = o * (1.0 - o) * do
    grads["W_o"] = Z.T @ do_int
    grads["B_o"] = do_int.sum(axis=0, keepdims=True)

    dC_out = dh_out * o * (1.0 - jnp.tanh(C_out) ** 2) + dstate.C
    dC_bar = dC_out * i
    dC_bar_int = (1.0 - C_bar**2) * dC_bar
    grads["W_c"] = Z.T @ dC_bar_int
    grads["B_c"] = dC_bar_int.sum(axis=0, keepdims=True)

    di = dC_out * C_bar
    di_int = i * (1.0 - i) * di
    grads["W_i"] = Z.T @ di_int
    grads["B_i"] = di_int.sum(axis=0, keepdims=True)

    df = dC_out * C_in
    df_int = f * (1.0 - f) * df
    grads["W_f"] = Z.T @ df_int
    grads["B_f"] = df_int.sum(axis=0, keepdims=True)

    dZ = df_int @ params["W_f"].T + di_int @ params["W_i"].T + dC_bar_int @ params["W_c"].T + do_int @ params["W_o"].T
    n_in = Z.shape[-1] - H_out.shape[-1]
    dx, dH_in = dZ[:, :n_in], dZ[:, n_in:]
    dC_in = f * dC_out
    return dx, LSTMState(dH_in, dC_in), grads


LSTM = from_node("lstm", param_specs, LSTMState, node, node_backward)

# ------------------------------------------------------------------------------------------- fused variant


def _fuse(params, n_in):
    """``W_x`` (in, 4 hidden), ``B`` (1, 4 hidden), ``W_h`` (hidden, 4 hidden): the gates [f, i, c, o] side by side."""
    W_x = jnp.concatenate([params[f"W_{g}"][:n_in] for g in GATES], axis=1)
    B = jnp.concatenate([params[f"B_{g}"] for g in GATES], axis=1)
    W_h = jnp.concatenate([params[f"W_{g}"][n_in:] for g in GATES], axis=1)
    return W_x, B, W_h


def _gate_constants(hidden, dtype, ndim):
    """Per-column constants of the fused gates ``[f, i, C_bar, o]`` (each ``hidden`` wide).

    ``s(a) = 0.5 tanh(0.5 a) + 0.5``, so all four activations are one elementwise op over the fused
    pre-activations, ``g = scale * tanh(scale * a) + shift`` with ``scale = shift = 0.5`` on the sigmoid gates
    and ``scale = 1, shift = 0`` on ``C_bar``. Their slopes ``g(1 - g)`` and ``1 - g^2`` are both
    ``r + g (q - g)`` with ``(q, r) = (1, 0)`` and ``(0, 1)``. (XLA:CPU runs one full-width op per step much
    faster than four quarter-width ones.)
    """
    sig = jnp.repeat(jnp.array([1.0, 1.0, 0.0, 1.0], dtype), hidden).reshape((1,) * (ndim - 1) + (4 * hidden,))
    scale, shift = 1.0 - 0.5 * sig, 0.5 * sig
    return scale, shift, sig, 1.0 - sig


def _step(W_h, state, xp):
    """The forward step on the fused pre-activations ``xp = x W_x + B`` (computed for all steps at once)."""
    scale, shift, _, _ = _gate_constants(state.H.shape[-1], xp.dtype, xp.ndim)
    gates = scale * jnp.tanh(scale * (xp + state.H @ W_h)) + shift  # [f, i, C_bar, o]
    f, i, C_bar, o = jnp.split(gates, 4, axis=-1)
    C_out = f * state.C + i * C_bar
    return LSTMState(o * jnp.tanh(C_out), C_out), gates


def _step_backward(W_hT, dstate, inputs):
    """node_backward's carried part: ``[df_int, di_int, dC_bar_int, do_int] = [dC_out, dC_out, dC_out, dh_out] * P``.

    ``P = [C_in, C_bar, i, tanh(C_out)] * [f', i', C_bar', o']`` and ``E = o tanh'(C_out)`` come precomputed
    for every step; ``dH_in = d*_int W_h^T``, ``dC_in = f dC_out``.
    """
    dX_out_h, (P, E, f) = inputs
    dh_out = dstate.H + dX_out_h
    dC_out = dstate.C + dh_out * E
    d_int = jnp.concatenate([dC_out, dC_out, dC_out, dh_out], axis=-1) * P
    return LSTMState(d_int @ W_hT, dC_out * f), d_int


def fused_forward(params, xs, state0):
    """All steps of the LSTM with the fused gates."""
    return _fused.scan_forward(_step, params, *_fuse(params, xs.shape[-1]), xs, state0)


def fused_backward(params, residuals, dys, dlast):
    """All steps: the reverse scan of :func:`_step_backward`, then each weight's gradient in one product."""
    xs, state0, states, gates = residuals
    n_in, hidden = xs.shape[-1], state0.H.shape[-1]
    W_x, _, W_h = _fuse(params, n_in)
    grads, dX_out_h = _fused.output_backward(params, states.H, dys)
    prev = _fused.previous(state0, states)

    _, _, q, r = _gate_constants(hidden, gates.dtype, gates.ndim)
    f, i, C_bar, o = jnp.split(gates, 4, axis=-1)
    tanh_C = jnp.tanh(states.C)
    P = jnp.concatenate([prev.C, C_bar, i, tanh_C], axis=-1) * (r + gates * (q - gates))
    E = o * (1.0 - tanh_C**2)
    dstate0, d_int = _fused.reverse_scan(_step_backward, W_h, dlast, (dX_out_h, (P, E, f)))

    dxs = d_int @ W_x.T
    X, H_in, dA = _fused.flat(xs), _fused.flat(prev.H), _fused.flat(d_int)
    dW_x, dW_h, dB = (jnp.split(a, 4, axis=-1) for a in (X.T @ dA, H_in.T @ dA, dA.sum(0, keepdims=True)))
    for g, dWx, dWh, dBg in zip(GATES, dW_x, dW_h, dB, strict=True):
        grads[f"W_{g}"] = jnp.concatenate([dWx, dWh], axis=0)
        grads[f"B_{g}"] = dBg
    return _fused.in_primal_dtypes(params, xs, state0, grads, dxs, dstate0)


LSTM_FUSED = Cell("lstm_fused", param_specs, LSTMState, fused_forward, fused_backward)
