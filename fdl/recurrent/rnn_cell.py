"""The vanilla RNN cell (book ch. 6, RNNNode): one time step forward and backward, readable and fused.

Equations (``Z = [x, H]`` of shape (batch, in + hidden)):

    H_int = Z W_f + B_f          W_f (in + hidden, hidden), B_f (1, hidden)
    H_out = tanh(H_int)
    X_out = H_out W_v + B_v      W_v (hidden, out), B_v (1, out)

Backward, given ``dX_out`` and the gradient ``dH_next`` arriving from the next step:

    dW_v += H_out^T dX_out;  dB_v += sum_rows dX_out
    dh    = dX_out W_v^T + dH_next
    dH_int = dh (1 - H_out^2)                     (tanh'(H_int) = 1 - H_out^2)
    dW_f += Z^T dH_int;      dB_f += sum_rows dH_int
    dZ    = dH_int W_f^T  =  [dx, dH_in]

:data:`RNN` runs :func:`node`/:func:`node_backward` step by step; :data:`RNN_FUSED` is the same cell with the
input projection, the output projection and the weight gradients of all steps taken out of the loop.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from . import _fused
from .cell import Cell, ParamSpec, RNNState, bias, from_node, output_projection, weight


def param_specs(n_in: int, hidden: int, n_out: int) -> tuple[ParamSpec, ...]:
    """``W_f`` (n_in + hidden, hidden), ``B_f`` (1, hidden), ``W_v`` (hidden, n_out), ``B_v`` (1, n_out).

    Book ch. 6: RNNNode's params. ``W_f`` acts on ``Z = [x, H]``: fans ``(n_in + hidden, hidden)``.
    """
    W_f = weight("W_f", n_in + hidden, hidden)
    return (W_f, bias("B_f", W_f), *output_projection(hidden, n_out))


class RNNCache(NamedTuple):
    """What RNNNode.forward keeps on ``self`` for its backward."""

    Z: jax.Array
    H_out: jax.Array


def node(params, x, state: RNNState):
    """One step, book RNNNode.forward: ``x`` (batch, in), ``state.H`` (batch, hidden) -> ``(X_out, state, cache)``.

    ``X_out`` (batch, output_size); the new state (batch, hidden); dtypes promoted from x, H and the params.
    Nothing is checked (the layer's ``apply`` checks the shapes); a mismatch raises jax's own error.
    """
    Z = jnp.concatenate([x, state.H], axis=-1)
    H_int = Z @ params["W_f"] + params["B_f"]
    H_out = jnp.tanh(H_int)
    X_out = H_out @ params["W_v"] + params["B_v"]
    return X_out, RNNState(H_out), RNNCache(Z, H_out)


def node_backward(params, cache: RNNCache, dX_out, dstate: RNNState):
    """One step, book RNNNode.backward: ``(dx, RNNState(dH_in), grads)`` from ``dX_out`` and ``dstate.H``."""
    Z, H_out = cache
    grads = {}
    grads["W_v"] = H_out.T @ dX_out
    grads["B_v"] = dX_out.sum(axis=0, keepdims=True)
    dh = dX_out @ params["W_v"].T + dstate.H
    dH_int = dh * (1.0 - H_out**2)
    grads["W_f"] = Z.T @ dH_int
    grads["B_f"] = dH_int.sum(axis=0, keepdims=True)
    dZ = dH_int @ params["W_f"].T
    n_in = Z.shape[-1] - H_out.shape[-1]
    return dZ[:, :n_in], RNNState(dZ[:, n_in:]), grads


RNN = from_node("rnn", param_specs, RNNState, node, node_backward)

# ------------------------------------------------------------------------------------------- fused variant


def _step(W_h, state, xp):
    """``H' = tanh(x W_x + B + H W_h)`` with ``x W_x + B`` computed for all steps before the loop."""
    return RNNState(jnp.tanh(xp + state.H @ W_h)), ()


def _step_backward(W_hT, dstate, inputs):
    """``dH_int = (dH_next + dh_out) tanh'``; ``dH_in = dH_int W_h^T`` (tanh's slope precomputed)."""
    dh_out, slope = inputs
    dH_int = (dstate.H + dh_out) * slope
    return RNNState(dH_int @ W_hT), dH_int


def fused_forward(params, xs, state0):
    """All steps: ``W_f`` split into its input rows ``W_x`` and hidden rows ``W_h``."""
    n_in = xs.shape[-1]
    return _fused.scan_forward(_step, params, params["W_f"][:n_in], params["B_f"], params["W_f"][n_in:], xs, state0)


def fused_backward(params, residuals, dys, dlast):
    """All steps: one reverse scan over ``dH``; ``dW_f = [X; H_prev]^T dH_int`` summed over every step at once."""
    xs, state0, states, _ = residuals
    n_in = xs.shape[-1]
    grads, dh_out = _fused.output_backward(params, states.H, dys)
    prev = _fused.previous(state0, states)
    slope = 1.0 - states.H**2
    dstate0, dH_int = _fused.reverse_scan(_step_backward, params["W_f"][n_in:], dlast, (dh_out, slope))
    dxs = dH_int @ params["W_f"][:n_in].T
    X, H_in, dA = _fused.flat(xs), _fused.flat(prev.H), _fused.flat(dH_int)
    grads["W_f"] = jnp.concatenate([X.T @ dA, H_in.T @ dA], axis=0)
    grads["B_f"] = dA.sum(0, keepdims=True)
    return _fused.in_primal_dtypes(params, xs, state0, grads, dxs, dstate0)


RNN_FUSED = Cell("rnn_fused", param_specs, RNNState, fused_forward, fused_backward)
