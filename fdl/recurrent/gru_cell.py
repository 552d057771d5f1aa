"""The GRU cell (book ch. 6, GRUNode, erratum 2 fixed): one time step forward and backward, readable and fused.

Equations (``s`` the sigmoid; ``W_x*`` (in, hidden), ``W_h*`` (hidden, hidden), ``B_*`` (1, hidden)):

    r = s(x W_xr + H_in W_hr + B_r)                  reset gate
    u = s(x W_xu + H_in W_hu + B_u)                  update gate
    h_reset = r H_in
    h_bar = tanh(x W_xh + h_reset W_hh + B_h)        candidate state
    H_out = u H_in + (1 - u) h_bar
    X_out = H_out W_v + B_v

Backward, given ``dX_out`` and ``dH_next`` from the next step (``s' = s (1 - s)``, ``tanh' = 1 - tanh^2``):

    dh_out = dX_out W_v^T + dH_next
    du = dh_out (H_in - h_bar);          du_int = u (1 - u) du
    dh_bar = dh_out (1 - u);             dh_bar_int = (1 - h_bar^2) dh_bar
    dh_reset = dh_bar_int W_hh^T
    dr = dh_reset H_in;                  dr_int = r (1 - r) dr
    dW_xg += x^T dg_int;  dW_hg += H_in^T dg_int (h_reset^T for W_hh);  dB_g += sum_rows dg_int
    dx = dr_int W_xr^T + du_int W_xu^T + dh_bar_int W_xh^T
    dH_in = dh_out u + dh_reset r + dr_int W_hr^T + du_int W_hu^T

Erratum 2: the book's GRUNode computes the update gate from the reset gate's inputs and its backward ignores
its own ``dh_out``, so every GRU weight but ``W_v, B_v`` gets a zero gradient. Here ``u`` has its own weights
``W_xu, W_hu, B_u`` and the backward is the derivative of the equations above (tested against ``jax.grad``).

:data:`GRU` runs :func:`node`/:func:`node_backward` step by step; :data:`GRU_FUSED` is the same cell with the
gates' input weights side by side, the input projection and weight gradients of all steps outside the loop.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from . import _fused
from .cell import Cell, ParamSpec, RNNState, bias, from_node, output_projection, weight

sigmoid = jax.nn.sigmoid
GATES = ("r", "u", "h")


def param_specs(n_in: int, hidden: int, n_out: int) -> tuple[ParamSpec, ...]:
    """For each gate g in r, u, h: ``W_xg`` (n_in, hidden), ``W_hg`` (hidden, hidden), ``B_g`` (1, hidden); then
    ``W_v`` (hidden, n_out), ``B_v`` (1, n_out).

    Book ch. 6: GRUNode's params. Each matrix has its own fans; a gate's bias takes its input weight's.
    """
    specs = []
    for g in GATES:
        W_x = weight(f"W_x{g}", n_in, hidden)
        specs += [W_x, weight(f"W_h{g}", hidden, hidden), bias(f"B_{g}", W_x)]
    return (*specs, *output_projection(hidden, n_out))


class GRUCache(NamedTuple):
    """What GRUNode.forward keeps on ``self`` for its backward."""

    X_in: jax.Array
    H_in: jax.Array
    r: jax.Array
    u: jax.Array
    h_reset: jax.Array
    h_bar: jax.Array
    H_out: jax.Array


def node(params, x, state: RNNState):
    """One step, book GRUNode.forward (erratum 2 fixed): ``(X_out, RNNState(H_out), cache)``.

    ``x`` (batch, in), ``state.H`` (batch, hidden); ``X_out`` (batch, output_size), ``H_out`` (batch, hidden);
    dtypes promoted from x, H and the params. Nothing is checked (the layer's ``apply`` checks the shapes).
    """
    H_in = state.H
    r = sigmoid(x @ params["W_xr"] + H_in @ params["W_hr"] + params["B_r"])
    u = sigmoid(x @ params["W_xu"] + H_in @ params["W_hu"] + params["B_u"])
    h_reset = r * H_in
    h_bar = jnp.tanh(x @ params["W_xh"] + h_reset @ params["W_hh"] + params["B_h"])
    H_out = u * H_in + (1.0 - u) * h_bar
    X_out = H_out @ params["W_v"] + params["B_v"]
    return X_out, RNNState(H_out), GRUCache(x, H_in, r, u, h_reset, h_bar, H_out)


def node_backward(params, cache: GRUCache, dX_out, dstate: RNNState):
    """One step, book GRUNode.backward (erratum 2 fixed): ``(dx, RNNState(dH_in), grads)``."""
    X_in, H_in, r, u, h_reset, h_bar, H_out = cache
    grads = {}
    grads["W_v"] = H_out.T @ dX_out
    grads["B_v"] = dX_out.sum(axis=0, keepdims=True)
    dh_out = dX_out @ params["W_v"].T + dstate.H

    du = dh_out * (H_in - h_bar)
    du_int = u * (1.0 - u) * du
    dh_bar = dh_out * (1.0 - u)
    dh_bar_int = (1.0 - h_bar**2) * dh_bar
    grads["W_xh"] = X_in.T @ dh_bar_int
    grads["W_hh"] = h_reset.T @ dh_bar_int
    grads["B_h"] = dh_bar_int.sum(axis=0, keepdims=True)

    dh_reset = dh_bar_int @ params["W_hh"].T
    dr = dh_reset * H_in
    dr_int = r * (1.0 - r) * dr
    grads["W_xu"] = X_in.T @ du_int
    grads["W_hu"] = H_in.T @ du_int
    grads["B_u"] = du_int.sum(axis=0, keepdims=True)
    grads["W_xr"] = X_in.T @ dr_int
    grads["W_hr"] = H_in.T @ dr_int
    grads["B_r"] = dr_int.sum(axis=0, keepdims=True)

    dx = dr_int @ params["W_xr"].T + du_int @ params["W_xu"].T + dh_bar_int @ params["W_xh"].T
    dH_in = dh_out * u + dh_reset * r + dr_int @ params["W_hr"].T + du_int @ params["W_hu"].T
    return dx, RNNState(dH_in), grads


GRU = from_node("gru", param_specs, RNNState, node, node_backward)

# ------------------------------------------------------------------------------------------- fused variant


def _step(weights, state, xp):
    """The forward step on ``xp = [x W_xr, x W_xu, x W_xh] + [B_r, B_u, B_h]`` (all steps at once)."""
    W_h, W_hh = weights  # W_h = [W_hr, W_hu] side by side
    H_in = state.H
    x_r, x_u, x_h = jnp.split(xp, 3, axis=-1)
    h_r, h_u = jnp.split(H_in @ W_h, 2, axis=-1)
    r, u = sigmoid(x_r + h_r), sigmoid(x_u + h_u)
    h_bar = jnp.tanh(x_h + (r * H_in) @ W_hh)
    return RNNState(u * H_in + (1.0 - u) * h_bar), jnp.concatenate([r, u, h_bar], axis=-1)


def _step_backward(weights_T, dstate, inputs):
    """:func:`node_backward`'s carried part; returns ``[dr_int, du_int, dh_bar_int]`` for the weight gradients."""
    W_hT, W_hhT = weights_T
    dX_out_h, (gates, H_in) = inputs
    r, u, h_bar = jnp.split(gates, 3, axis=-1)
    dh_out = dstate.H + dX_out_h
    dh_bar_int = dh_out * (1.0 - u) * (1.0 - h_bar**2)
    du_int = dh_out * (H_in - h_bar) * u * (1.0 - u)
    dh_reset = dh_bar_int @ W_hhT
    dr_int = dh_reset * H_in * r * (1.0 - r)
    d_ru = jnp.concatenate([dr_int, du_int], axis=-1)
    dH_in = dh_out * u + dh_reset * r + d_ru @ W_hT
    return RNNState(dH_in), jnp.concatenate([d_ru, dh_bar_int], axis=-1)


def _fuse(params):
    W_x = jnp.concatenate([params["W_xr"], params["W_xu"], params["W_xh"]], axis=1)
    B = jnp.concatenate([params["B_r"], params["B_u"], params["B_h"]], axis=1)
    W_h = jnp.concatenate([params["W_hr"], params["W_hu"]], axis=1)
    return W_x, B, (W_h, params["W_hh"])


def fused_forward(params, xs, state0):
    """All steps of the GRU with the fused gates."""
    return _fused.scan_forward(_step, params, *_fuse(params), xs, state0)


def fused_backward(params, residuals, dys, dlast):
    """All steps: the reverse scan of :func:`_step_backward`, then each weight's gradient in one product."""
    xs, state0, states, gates = residuals
    hidden = state0.H.shape[-1]
    W_x, _, W_h = _fuse(params)
    grads, dX_out_h = _fused.output_backward(params, states.H, dys)
    prev = _fused.previous(state0, states)
    dstate0, d_int = _fused.reverse_scan(_step_backward, W_h, dlast, (dX_out_h, (gates, prev.H)))

    dxs = d_int @ W_x.T
    X, H_in, dA, r = _fused.flat(xs), _fused.flat(prev.H), _fused.flat(d_int), _fused.flat(gates)[:, :hidden]
    dW_x = jnp.split(X.T @ dA, 3, axis=-1)
    dB = jnp.split(dA.sum(0, keepdims=True), 3, axis=-1)
    dW_hr, dW_hu = jnp.split(H_in.T @ dA[:, : 2 * hidden], 2, axis=-1)
    grads.update(
        {
            "W_xr": dW_x[0],
            "W_hr": dW_hr,
            "B_r": dB[0],
            "W_xu": dW_x[1],
            "W_hu": dW_hu,
            "B_u": dB[1],
            "W_xh": dW_x[2],
            "W_hh": (r * H_in).T @ dA[:, 2 * hidden :],
            "B_h": dB[2],
        }
    )
    return _fused.in_primal_dtypes(params, xs, state0, grads, dxs, dstate0)


GRU_FUSED = Cell("gru_fused", param_specs, RNNState, fused_forward, fused_backward)
