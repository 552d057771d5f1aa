"""Chapter 2, Fundamentals: linear regression and a 13-13-1 network with hand-derived gradients, no framework.

Models are dicts of arrays with the book's names (``W``, ``B``; ``W1``, ``B1``, ``W2``, ``B2``); each is a
forward returning ``(loss, forward_info)`` and a ``*_gradients(forward_info, weights)`` by the chain rule,
on NumPy (float64, as the book) or JAX arrays, so that ``jax.grad`` checks each gradient.

Erratum 7 (BOOK.md): the book's loss is the *mean* squared error but it sums the per-example gradients (and
its two-layer net drops the factor 2 and shares one bias gradient). ``reduction="mean"`` (default) is the
exact gradient of the mean loss, ``"sum"`` of the summed loss, and ``"book"`` the book's arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .._moved import moved_attribute
from .foundations import array_module, sigmoid

REDUCTIONS = ("mean", "sum", "book")
# The seeds of the book's notebook; with them and reduction="book", train_regression() reproduces the book's figures
# (the book's text prints seed=80718, the seed of the data split).
BOOK_SEEDS = {"linear_regression": 180708, "neural_network": 180807}


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _check_batch(X, y, n_in: int, what: str) -> None:
    if np.ndim(X) != 2 or np.shape(X)[1] != n_in:
        raise ValueError(f"{what}: expected X of shape (batch, {n_in}), got {tuple(np.shape(X))}")
    if np.shape(y) != (np.shape(X)[0], 1):
        raise ValueError(f"{what}: expected y of shape ({np.shape(X)[0]}, 1), got {tuple(np.shape(y))}")


# --- Linear regression --------------------------------------------------------------------------------------


def init_linear_regression(rng: np.random.RandomState, n_in: int) -> dict:
    """``W`` (n_in, 1) then ``B`` (1, 1), float64 standard normal in the book's order (ch. 2: ``init_weights``)."""
    return {"W": rng.randn(n_in, 1), "B": rng.randn(1, 1)}


def forward_linear_regression(X, y, weights: dict):
    """``P = X W + B``, ``L = mean((y - P)^2)``. X (batch, k), y (batch, 1). Returns ``(L, forward_info)``.

    Book ch. 2: ``forward_linear_regression``. L is 0-D; ``forward_info`` holds ``X``, ``N``, ``P`` and ``y``.

    Raises:
      ValueError: X not (batch, k) with k the rows of ``W``, or y not (batch, 1).
    """
    _check_batch(X, y, np.shape(weights["W"])[0], "forward_linear_regression")
    N = X @ weights["W"]
    P = N + weights["B"]
    loss = ((y - P) ** 2).mean()
    return loss, {"X": X, "N": N, "P": P, "y": y}


def loss_gradients(forward_info: dict, weights: dict, reduction: str = "mean") -> dict:
    """``dL/dW`` (k, 1) and ``dL/dB`` (1, 1) for :func:`forward_linear_regression` (book: ``loss_gradients``).

    ``dL/dP = -2 (y - P) / batch`` (``"mean"``; without ``/ batch`` for ``"sum"`` and ``"book"``), then
    ``dL/dN = dL/dP`` (``P = N + B``), ``dL/dW = X^T dL/dN`` and ``dL/dB = sum_rows(dL/dP)``.
    ``"book"`` gives the same as ``"sum"`` here. Returns a dict ``{"W", "B"}``.

    Raises:
      ValueError: an unknown ``reduction``.
    """
    _check_reduction(reduction)
    X, P, y = forward_info["X"], forward_info["P"], forward_info["y"]
    dLdP = -2 * (y - P)
    if reduction == "mean":
        dLdP = dLdP / X.shape[0]
    return {"W": X.T @ dLdP, "B": dLdP.sum(axis=0, keepdims=True)}


def predict_linear_regression(X, weights: dict):
    """``X W + B``: X (batch, k) -> (batch, 1) (book ch. 2)."""
    return X @ weights["W"] + weights["B"]


# --- The two-layer network: 13 -> 13 (sigmoid) -> 1 ---------------------------------------------------------


def init_neural_network(rng: np.random.RandomState, n_in: int, hidden: int = 13) -> dict:
    """``W1`` (n_in, hidden), ``B1`` (1, hidden), ``W2`` (hidden, 1), ``B2`` (1, 1), float64 standard normal.

    Drawn in the book's order (book ch. 2: ``init_weights``).
    """
    return {
        "W1": rng.randn(n_in, hidden),
        "B1": rng.randn(1, hidden),
        "W2": rng.randn(hidden, 1),
        "B2": rng.randn(1, 1),
    }


def forward_neural_network(X, y, weights: dict):
    """``M1 = X W1``, ``N1 = M1 + B1``, ``O1 = sigmoid(N1)``, ``M2 = O1 W2``, ``P = M2 + B2``, ``L = mean((y - P)^2)``.

    X (batch, k), y (batch, 1). Returns ``(L, forward_info)`` (book ch. 2: ``forward_loss``), L 0-D.

    Raises:
      ValueError: X not (batch, k) with k the rows of ``W1``, or y not (batch, 1).
    """
    _check_batch(X, y, np.shape(weights["W1"])[0], "forward_neural_network")
    M1 = X @ weights["W1"]
    N1 = M1 + weights["B1"]
    O1 = sigmoid(N1)
    M2 = O1 @ weights["W2"]
    P = M2 + weights["B2"]
    loss = ((y - P) ** 2).mean()
    return loss, {"X": X, "M1": M1, "N1": N1, "O1": O1, "M2": M2, "P": P, "y": y}


def neural_network_gradients(forward_info: dict, weights: dict, reduction: str = "mean") -> dict:
    """Gradients of :func:`forward_neural_network`'s loss for ``W1, B1, W2, B2`` (book: ``loss_gradients``).

    Backward through the chain, with ``dL/dP = -2 (y - P) / batch`` for ``"mean"`` (no ``/ batch`` for
    ``"sum"``): ``dL/dW2 = O1^T dL/dP``, ``dL/dB2 = sum_rows(dL/dP)``, ``dL/dO1 = dL/dP W2^T``,
    ``dL/dN1 = dL/dO1 * O1 (1 - O1)``, ``dL/dW1 = X^T dL/dN1``, ``dL/dB1 = sum_rows(dL/dN1)`` (1, hidden).

    ``"book"``: ``dL/dP = -(y - P)`` and one ``dL/dB1`` scalar for every hidden unit (erratum 7). Returns
    ``{"W1", "B1", "W2", "B2"}``.

    Raises:
      ValueError: an unknown ``reduction``.
    """
    _check_reduction(reduction)
    X, O1, P, y = forward_info["X"], forward_info["O1"], forward_info["P"], forward_info["y"]
    if reduction == "book":
        dLdP = -(y - P)
    else:
        dLdP = -2 * (y - P)
        if reduction == "mean":
            dLdP = dLdP / X.shape[0]
    dLdO1 = dLdP @ weights["W2"].T
    dLdN1 = dLdO1 * O1 * (1 - O1)
    dLdB1 = dLdN1.sum(axis=0, keepdims=True)
    if reduction == "book":
        dLdB1 = dLdB1.sum() * array_module(dLdB1).ones_like(dLdB1)
    return {"W1": X.T @ dLdN1, "B1": dLdB1, "W2": O1.T @ dLdP, "B2": dLdP.sum(axis=0, keepdims=True)}


def predict_neural_network(X, weights: dict):
    """``sigmoid(X W1 + B1) W2 + B2``: X (batch, k) -> (batch, 1) (book ch. 2)."""
    return sigmoid(X @ weights["W1"] + weights["B1"]) @ weights["W2"] + weights["B2"]


MODELS = {
    "linear_regression": (init_linear_regression, forward_linear_regression, loss_gradients, predict_linear_regression),
    "neural_network": (init_neural_network, forward_neural_network, neural_network_gradients, predict_neural_network),
}


# --- Training -----------------------------------------------------------------------------------------------


def batches(rng: np.random.RandomState, X, y, batch_size: int, n_iter: int):
    """Yield ``n_iter`` batches the book's way: permute the rows, walk through them ``batch_size`` at a time
    (the last batch of a pass is the remainder), and permute again when a pass is used up.

    Book ch. 2: ``train`` with ``permute_data`` and ``generate_batch``. X (n, k), y (n, 1).
    """
    n = X.shape[0]
    perm = rng.permutation(n)
    X, y = X[perm], y[perm]
    start = 0
    for _ in range(n_iter):
        if start >= n:
            perm = rng.permutation(n)
            X, y = X[perm], y[perm]
            start = 0
        yield X[start : start + batch_size], y[start : start + batch_size]
        start += batch_size


def train_regression(
    model: str,
    X,
    y,
    *,
    n_iter: int = 1000,
    learning_rate: float = 0.001,
    batch_size: int = 23,
    seed: int | None = None,
    reduction: str = "mean",
    hidden: int = 13,
    log_every: int = 0,
    log: Callable | None = print,
):
    """Plain SGD on ``model`` (``"linear_regression"`` or ``"neural_network"``). Returns ``(weights, losses)``.

    The book's ``train``: one ``RandomState(seed)`` draws the weights, then :func:`batches`' permutations
    (``seed=None``: the book's, ``BOOK_SEEDS``); each step is ``w -= learning_rate * dL/dw`` with
    ``reduction``'s gradients. X (n, k) and y (n, 1) become float64; ``losses`` (n_iter,) holds each step's
    batch loss, and ``log_every > 0`` logs their running mean.

    Raises:
      ValueError: an unknown ``model`` or ``reduction``, X not 2-D, or y not (n, 1).
    """
    _check_reduction(reduction)
    if model not in MODELS:
        raise ValueError(f"train_regression: model must be one of {sorted(MODELS)}, got {model!r}")
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    init, forward, gradients, _ = MODELS[model]
    _check_batch(X, y, X.shape[1] if X.ndim == 2 else -1, f"train_regression ({model})")
    rng = np.random.RandomState(BOOK_SEEDS[model] if seed is None else seed)
    weights = init(rng, X.shape[1]) if model == "linear_regression" else init(rng, X.shape[1], hidden)
    losses = np.empty(n_iter)
    for i, (xb, yb) in enumerate(batches(rng, X, y, batch_size, n_iter)):
        losses[i], info = forward(xb, yb, weights)
        grads = gradients(info, weights, reduction)
        for k in weights:
            weights[k] = weights[k] - learning_rate * grads[k]
        if log is not None and log_every and (i + 1) % log_every == 0:
            log(f"iteration {i + 1}: mean training loss {losses[i + 1 - log_every : i + 1].mean():.3f}")
    return weights, losses


def predict_regression(model: str, X, weights: dict):
    """Predictions of a trained ``model`` for X (batch, k) -> (batch, 1) (book ch. 2).

    Raises:
      KeyError: an unknown ``model``.
    """
    return MODELS[model][3](X, weights)


def least_squares(X, y) -> dict:
    """Book ch. 2's OLS baseline: the least-squares fit with an intercept, ``{"W": (k, 1), "B": (1, 1)}``.

    ``np.linalg.lstsq`` on ``[X, 1]``; the book uses scikit-learn's ``LinearRegression``.

    Raises:
      ValueError: X not 2-D, or y not (n, 1).
    """
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    _check_batch(X, y, X.shape[1] if X.ndim == 2 else -1, "least_squares")
    coef = np.linalg.lstsq(np.hstack([X, np.ones((X.shape[0], 1))]), y, rcond=None)[0]
    return {"W": coef[:-1], "B": coef[-1:]}


def __getattr__(name):
    return moved_attribute(__name__, name)
