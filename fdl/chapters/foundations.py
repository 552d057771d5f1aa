"""Chapter 1, Foundations: derivatives, the chain rule, and gradients of functions of several inputs and matrices.

Plain functions that run on NumPy arrays (float64, as the book) and on JAX arrays, so that ``jax.grad`` of
the same forward checks each hand-derived derivative. Elementwise functions keep x's shape.

>>> import numpy as np
>>> float(np.round(chain_deriv([FUNCTIONS["square"], FUNCTIONS["sigmoid"]], np.float64(1.0)), 4))  # 2x s'(x^2)
0.3932
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


def array_module(*arrays):
    """``jax.numpy`` if any argument is a JAX array (or a tracer), else ``numpy``."""
    return jnp if any(isinstance(a, jax.Array) for a in arrays) else np


# --- One input: a function and its derivative --------------------------------------------------------------


def deriv(f: Callable, x, delta: float = 0.001):
    """Central difference ``(f(x + d) - f(x - d)) / (2 d)`` of an elementwise ``f`` (book ch. 1: ``deriv``)."""
    return (f(x + delta) - f(x - delta)) / (2 * delta)


def square(x):
    """``x^2`` (book ch. 1)."""
    return x * x


def square_deriv(x):
    """``2 x`` (book ch. 1)."""
    return 2 * x


def sigmoid(x):
    """``1 / (1 + exp(-x))`` (book ch. 1)."""
    return 1 / (1 + array_module(x).exp(-x))


def sigmoid_deriv(x):
    """``s (1 - s)`` with ``s = sigmoid(x)`` (book ch. 1)."""
    s = sigmoid(x)
    return s * (1 - s)


def leaky_relu(x, slope: float = 0.2):
    """``x`` for ``x > 0``, ``slope * x`` otherwise (book ch. 1, slope 0.2)."""
    return array_module(x).where(x > 0, x, slope * x)


def leaky_relu_deriv(x, slope: float = 0.2):
    """``1`` for ``x > 0``, ``slope`` otherwise (book ch. 1; at 0 the left slope, see :mod:`fdl.ops.activations`)."""
    xp = array_module(x)
    return xp.where(x > 0, xp.ones_like(x), slope * xp.ones_like(x))


class Fn(NamedTuple):
    """An elementwise function ``f`` and its derivative ``df``: one link of a chain (book ch. 1)."""

    f: Callable
    df: Callable


FUNCTIONS = {
    "square": Fn(square, square_deriv),
    "sigmoid": Fn(sigmoid, sigmoid_deriv),
    "leaky_relu": Fn(leaky_relu, leaky_relu_deriv),
}


# --- Chains of functions ------------------------------------------------------------------------------------


def chain(*fs: Callable) -> Callable:
    """``chain(f1, f2, f3)(x) = f3(f2(f1(x)))``, any length >= 1 (book: ``chain_length_2``, ``chain_length_3``).

    Raises:
      ValueError: no functions.
    """
    if not fs:
        raise ValueError("chain: needs at least one function")

    def composed(x):
        for f in fs:
            x = f(x)
        return x

    return composed


def chain_deriv(fns: Sequence[Fn | tuple[Callable, Callable]], x):
    """Derivative of ``chain(f_1, ..., f_n)`` at ``x`` by the chain rule, elementwise in ``x``.

    With ``u_0 = x`` and ``u_i = f_i(u_{i-1})``: ``d u_n / dx = f_n'(u_{n-1}) * ... * f_2'(u_1) * f_1'(u_0)``
    (book: ``chain_deriv_2``, ``chain_deriv_3``, for any length). ``fns`` holds ``(f, f')`` pairs, e.g.
    ``[FUNCTIONS["square"], FUNCTIONS["sigmoid"]]``.

    Raises:
      ValueError: no pairs, or a link that is not a pair.
    """
    if len(fns) == 0:
        raise ValueError("chain_deriv: needs at least one (f, df) pair")
    grad, u = 1, x
    for pair in fns:
        if len(pair) != 2:
            raise ValueError(f"chain_deriv: each link must be an (f, df) pair, got {pair!r}")
        f, df = pair
        grad = grad * df(u)
        u = f(u)
    return grad


# --- Several inputs -----------------------------------------------------------------------------------------


def add_forward(x, y, fn: Fn = FUNCTIONS["sigmoid"]):
    """``s = f(x + y)`` for arrays that broadcast (book ch. 1: ``multiple_inputs_add``)."""
    return fn.f(x + y)


def add_backward(x, y, fn: Fn = FUNCTIONS["sigmoid"]):
    """``(ds/dx, ds/dy) = (f'(x + y), f'(x + y))``: the sum passes the gradient to both inputs unchanged.

    Book ch. 1: ``multiple_inputs_add_backward``. x, y of the same shape (broadcast inputs are not summed back).
    """
    g = fn.df(x + y)
    return g, g


def multiply_forward(x, y, fn: Fn = FUNCTIONS["sigmoid"]):
    """``s = f(x * y)`` for arrays that broadcast (book ch. 1's exercise with a product instead of a sum)."""
    return fn.f(x * y)


def multiply_backward(x, y, fn: Fn = FUNCTIONS["sigmoid"]):
    """``(ds/dx, ds/dy) = (f'(x y) y, f'(x y) x)`` for x, y of the same shape (book ch. 1's product exercise)."""
    g = fn.df(x * y)
    return g * y, g * x


# --- Functions of matrices ----------------------------------------------------------------------------------


def _check_matmul(X, W, what: str) -> None:
    if np.ndim(X) != 2 or np.ndim(W) != 2 or np.shape(X)[1] != np.shape(W)[0]:
        raise ValueError(
            f"{what}: expected X (n, k) and W (k, m), got X {tuple(np.shape(X))} and W {tuple(np.shape(W))}"
        )


def matmul_forward(X, W, fn: Fn = FUNCTIONS["sigmoid"]):
    """``L = sum(S)``, ``S = f(N)``, ``N = X W`` for X (n, k), W (k, m); returns the scalar L
    (book: ``matrix_function_forward_sum``; with n = m = 1, L is the book's ``S`` of ``matrix_forward_extra``).

    Raises:
      ValueError: X or W not 2-D, or X's columns differ from W's rows.
    """
    _check_matmul(X, W, "matmul_forward")
    return fn.f(X @ W).sum()


def matmul_backward(X, W, fn: Fn = FUNCTIONS["sigmoid"]):
    """``(dL/dX, dL/dW)`` for :func:`matmul_forward`, shapes (n, k) and (k, m).

    ``dL/dN = f'(N)`` (dL/dS is all ones), so ``dL/dX = f'(N) W^T`` and ``dL/dW = X^T f'(N)``
    (book ch. 1: ``matrix_function_backward_sum_1``; the book takes f'(N) by the numerical :func:`deriv`, fdl
    by the exact derivative).

    Raises:
      ValueError: X or W not 2-D, or X's columns differ from W's rows.
    """
    _check_matmul(X, W, "matmul_backward")
    dLdN = fn.df(X @ W)
    return dLdN @ W.T, X.T @ dLdN


def perturb_deriv(f: Callable, X, index: tuple, delta: float = 0.001) -> float:
    """``dL/dX[index]`` by nudging one element of X up and down by ``delta`` (the book's ch. 1 check of dL/dX).

    X: any shape, copied as float64 NumPy; ``f`` maps it to a scalar; returns a Python float.
    """
    X = np.asarray(X, dtype=np.float64)
    up, down = X.copy(), X.copy()
    up[index] += delta
    down[index] -= delta
    return float((f(up) - f(down)) / (2 * delta))


def published_checks() -> dict:
    """Recompute the book's printed ch. 1 checks; keys as in :data:`fdl.harness.book.CH01`.

    The book's draws, from an explicit ``RandomState``: seed 190203 draws X (1, 3) then W (3, 1); seed 190204
    draws X (3, 3) then W (3, 2).
    """
    rng = np.random.RandomState(190203)
    X, W = rng.randn(1, 3), rng.randn(3, 1)
    dSdX = matmul_backward(X, W)[0]
    rng = np.random.RandomState(190204)
    X, W = rng.randn(3, 3), rng.randn(3, 2)
    return {
        "dS/dX (seed 190203)": [float(v) for v in dSdX[0]],
        "L (seed 190204)": float(matmul_forward(X, W)),
        "dL/dX[0,0] (seed 190204)": float(matmul_backward(X, W)[0][0, 0]),
    }
