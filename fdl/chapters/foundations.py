"""Chapter 1, Foundations: derivatives, the chain rule, and gradients of functions of several inputs and matrices.

Everything here is a plain function of arrays. Each one runs on NumPy arrays (float64, as the book computes)
and on JAX arrays, so ``jax.grad`` can differentiate the very same forward to check the hand-derived
derivative (see ``tests/chapters/test_foundations.py``).

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
    """``jax.numpy`` if any argument is a JAX array (or a tracer under ``jax.grad``), else ``numpy``.

    Lets each ch. 1 function run on the book's NumPy float64 arrays and under ``jax.grad``. Raises nothing.
    """
    return jnp if any(isinstance(a, jax.Array) for a in arrays) else np


# --- One input: a function and its derivative --------------------------------------------------------------

def deriv(f: Callable, x, delta: float = 0.001):
    """Central difference ``(f(x + d) - f(x - d)) / (2 d)``, elementwise in ``x`` (book ch. 1: ``deriv``).

    ``f`` must be elementwise; x: any shape (the book: a NumPy float64 array); the result has x's shape.
    Raises nothing itself (``f``'s errors propagate).
    """
    return (f(x + delta) - f(x - delta)) / (2 * delta)


def square(x):
    """``x^2``.

    Book ch. 1. x: a NumPy or JAX array (or a Python float) of any shape; the result has x's shape (and,
    for a floating x, its dtype). Raises nothing itself.
    """
    return x * x


def square_deriv(x):
    """``2 x``.

    Book ch. 1. x: a NumPy or JAX array (or a Python float) of any shape; the result has x's shape (and,
    for a floating x, its dtype). Raises nothing itself.
    """
    return 2 * x


def sigmoid(x):
    """``1 / (1 + exp(-x))``.

    Book ch. 1. x: a NumPy or JAX array (or a Python float) of any shape; the result has x's shape (and,
    for a floating x, its dtype). Raises nothing itself.
    """
    return 1 / (1 + array_module(x).exp(-x))


def sigmoid_deriv(x):
    """``s (1 - s)`` with ``s = sigmoid(x)``.

    Book ch. 1. x: a NumPy or JAX array (or a Python float) of any shape; the result has x's shape (and,
    for a floating x, its dtype). Raises nothing itself.
    """
    s = sigmoid(x)
    return s * (1 - s)


def leaky_relu(x, slope: float = 0.2):
    """``x`` for ``x > 0``, ``slope * x`` otherwise (book ch. 1, slope 0.2).

    x: a NumPy or JAX array of any shape; the result has its shape. Raises nothing itself.
    """
    return array_module(x).where(x > 0, x, slope * x)


def leaky_relu_deriv(x, slope: float = 0.2):
    """``1`` for ``x > 0``, ``slope`` otherwise (at 0 the left slope, as ``jax.grad`` of :func:`leaky_relu`).

    Book ch. 1. x: a NumPy or JAX array of any shape; the result has its shape and dtype. Raises nothing.
    """
    xp = array_module(x)
    return xp.where(x > 0, xp.ones_like(x), slope * xp.ones_like(x))


class Fn(NamedTuple):
    """A function paired with its derivative: what the chain rule needs from each link (book ch. 1).

    ``f`` and ``df`` are elementwise: each maps an array to one of the same shape. A plain container.
    """

    f: Callable
    df: Callable


FUNCTIONS = {
    "square": Fn(square, square_deriv),
    "sigmoid": Fn(sigmoid, sigmoid_deriv),
    "leaky_relu": Fn(leaky_relu, leaky_relu_deriv),
}


# --- Chains of functions ------------------------------------------------------------------------------------

def chain(*fs: Callable) -> Callable:
    """The composition that applies ``fs`` in order: ``chain(f1, f2, f3)(x) = f3(f2(f1(x)))``.

    Any length >= 1 (book: ``chain_length_2``, ``chain_length_3``, which also apply the first function first).

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
    ``[FUNCTIONS["square"], FUNCTIONS["sigmoid"]]``. x: any shape; the result has x's shape.

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
    """``s = f(x + y)`` (book ch. 1: ``multiple_inputs_add``).

    x, y: arrays that broadcast; the result has the broadcast shape. Raises nothing itself.
    """
    return fn.f(x + y)


def add_backward(x, y, fn: Fn = FUNCTIONS["sigmoid"]):
    """``(ds/dx, ds/dy) = (f'(x + y), f'(x + y))``: the sum passes the gradient to both inputs unchanged.

    Book ch. 1: ``multiple_inputs_add_backward``. x, y of the same shape; both results have it (for inputs
    that only broadcast, each result has the broadcast shape, not summed back). Raises nothing itself.
    """
    g = fn.df(x + y)
    return g, g


def multiply_forward(x, y, fn: Fn = FUNCTIONS["sigmoid"]):
    """``s = f(x * y)`` (book ch. 1's exercise with a product instead of a sum).

    x, y: arrays that broadcast; the result has the broadcast shape. Raises nothing itself.
    """
    return fn.f(x * y)


def multiply_backward(x, y, fn: Fn = FUNCTIONS["sigmoid"]):
    """``(ds/dx, ds/dy) = (f'(x y) y, f'(x y) x)``: each input's gradient is scaled by the other input.

    Book ch. 1 (the product exercise). x, y of the same shape; both results have it. Raises nothing itself.
    """
    g = fn.df(x * y)
    return g * y, g * x


# --- Functions of matrices ----------------------------------------------------------------------------------

def _check_matmul(X, W, what: str) -> None:
    if np.ndim(X) != 2 or np.ndim(W) != 2 or np.shape(X)[1] != np.shape(W)[0]:
        raise ValueError(f"{what}: expected X (n, k) and W (k, m), got X {tuple(np.shape(X))} "
                         f"and W {tuple(np.shape(W))}")


def matmul_forward(X, W, fn: Fn = FUNCTIONS["sigmoid"]):
    """``L = sum(S)``, ``S = f(N)``, ``N = X W`` for X (n, k), W (k, m); returns the scalar L
    (book: ``matrix_function_forward_sum``; with n = m = 1, L is the book's ``S`` of ``matrix_forward_extra``).

    Book ch. 1. L has the promoted dtype of X and W (a 0-D array).

    Raises:
      ValueError: X or W not 2-D, or X's columns differ from W's rows.
    """
    _check_matmul(X, W, "matmul_forward")
    return fn.f(X @ W).sum()


def matmul_backward(X, W, fn: Fn = FUNCTIONS["sigmoid"]):
    """``(dL/dX, dL/dW)`` for :func:`matmul_forward`, shapes (n, k) and (k, m).

    ``dL/dN = f'(N)`` (dL/dS is all ones), so ``dL/dX = f'(N) W^T`` and ``dL/dW = X^T f'(N)``
    (book: ``matrix_function_backward_sum_1`` for dL/dX, ``matrix_function_backward_1`` for n = m = 1;
    the book takes f'(N) by the numerical :func:`deriv`, fdl by the exact derivative). Book ch. 1.

    Raises:
      ValueError: X or W not 2-D, or X's columns differ from W's rows.
    """
    _check_matmul(X, W, "matmul_backward")
    dLdN = fn.df(X @ W)
    return dLdN @ W.T, X.T @ dLdN


def perturb_deriv(f: Callable, X, index: tuple, delta: float = 0.001) -> float:
    """``dL/dX[index]`` by nudging one element of X up and down by ``delta`` (the book's ch. 1 check of dL/dX).

    X: any shape, converted to a float64 NumPy copy (X itself is not changed); ``f`` maps it to a scalar;
    returns a Python float. Raises IndexError for an ``index`` outside X, and ``f``'s own errors.
    """
    X = np.asarray(X, dtype=np.float64)
    up, down = X.copy(), X.copy()
    up[index] += delta
    down[index] -= delta
    return float((f(up) - f(down)) / (2 * delta))


def published_checks() -> dict:
    """Recompute the book's printed ch. 1 checks; keys as in :data:`fdl.harness.book.CH01`.

    The draws are NumPy's legacy generator (``np.random.seed(s); X = randn(...); W = randn(...)``), taken
    from an explicit ``RandomState`` so no global state is touched: seed 190203 draws X (1, 3) then W (3, 1);
    seed 190204 draws X (3, 3) then W (3, 2).
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
