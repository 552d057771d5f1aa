"""Pieces shared by the fused (fast) cells: the loop over time and the output projection of all steps at once.

A fused cell keeps its gates' weights side by side (``W_x`` (in, gates * hidden), ``W_h``, ``B``), so
that the input projection of every step, ``xs @ W_x + B``, is one matrix product before the scan, the scan
body adds only ``H @ W_h``, and the weight gradients of all steps are one matrix product each after the
reverse scan (the book adds them up step by step). On XLA:CPU one large product is much faster than T
small ones.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from .cell import cast_like


def flat(a):
    """(T, batch, n) -> (T * batch, n): every step's rows in one matrix."""
    return a.reshape(-1, a.shape[-1])


def scan_forward(step: Callable, params, W_x, B, W_h, xs, state0):
    """``(ys, last, residuals)`` of the fused cell whose scan body is ``step(W_h, state, xp_t) -> (state, saved)``.

    ``xp_t = x_t W_x + B`` is computed for all steps at once; ``ys = H W_v + B_v`` likewise after the scan.
    ``residuals = (xs, state0, states, saved)`` with every step's state and ``saved`` stacked on axis 0.
    """
    xp = xs @ W_x + B[None]

    def body(state, xp_t):
        new, saved = step(W_h, state, xp_t)
        return new, (new, saved)

    last, (states, saved) = jax.lax.scan(body, state0, xp)
    return states.H @ params["W_v"] + params["B_v"][None], last, (xs, state0, states, saved)


def output_backward(params, H, dys):
    """The output projection's gradients for all steps: ``({W_v, B_v}, dH_out)`` (book: each node's W_v lines)."""
    grads = {"W_v": jnp.einsum("tbh,tbo->ho", H, dys), "B_v": dys.sum((0, 1))[None]}
    return grads, dys @ params["W_v"].T


def previous(state0, states):
    """Each step's incoming state: ``state0``, then the states of steps ``0 .. T-2``."""
    return jax.tree.map(lambda s0, s: jnp.concatenate([s0[None], s[:-1]]), state0, states)


def reverse_scan(step_backward: Callable, W_h, dlast, per_step):
    """``lax.scan(step_backward(W_h^T, dstate, inputs_t) -> (dstate, dpre_t), dlast, per_step, reverse=True)``.

    The transposed recurrent weights are materialised once before the loop: XLA would otherwise fold the
    transpose into each step's product, and XLA:CPU multiplies by a transposed operand more slowly.
    """
    W_hT = jax.lax.optimization_barrier(jax.tree.map(lambda w: w.T, W_h))
    return jax.lax.scan(lambda dstate, inputs: step_backward(W_hT, dstate, inputs), dlast, per_step, reverse=True)


def in_primal_dtypes(params, xs, state0, grads, dxs, dstate0):
    """``(grads, dxs, dstate0)`` each in its primal's dtype (the ``custom_vjp`` contract)."""
    return cast_like(grads, {k: params[k] for k in grads}), dxs.astype(xs.dtype), cast_like(dstate0, state0)
