"""fdl.chapters.fundamentals (chapter 2): hand-derived gradients against jax.grad (examples and property tests), the
book's batching, and its published Boston numbers."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fdl import metrics
from fdl.chapters import fundamentals as F
from fdl.chapters.fundamentals import (
    forward_linear_regression,
    forward_neural_network,
    loss_gradients,
    neural_network_gradients,
)
from fdl.data import boston_split
from fdl.harness import book
from tests.strategies import PROPERTY, assert_close, draw

LR_SEED, NN_SEED = 180708, 180807  # the seeds of the book's notebook (its text prints 80718, the split's seed)


def test_book_seeds_are_the_notebooks():
    assert F.BOOK_SEEDS == {"linear_regression": LR_SEED, "neural_network": NN_SEED}


@pytest.fixture(scope="module")
def boston():
    return boston_split()


def _batch(rng, n, k=13):
    return rng.randn(n, k), rng.randn(n, 1) * 5 + 20


def _jax_grads(forward, X, y, weights):
    as_jax = {k: jnp.asarray(v) for k, v in weights.items()}
    return jax.grad(lambda w: forward(jnp.asarray(X), jnp.asarray(y), w)[0])(as_jax)


@pytest.mark.parametrize("n", [1, 2, 23, 9])
def test_linear_regression_gradients_match_jax_grad(n):
    rng = np.random.RandomState(n)
    X, y = _batch(rng, n)
    weights = F.init_linear_regression(rng, 13)
    expected = _jax_grads(F.forward_linear_regression, X, y, weights)
    _, info = F.forward_linear_regression(X, y, weights)
    for reduction, scale in (("mean", 1), ("sum", n), ("book", n)):
        got = F.loss_gradients(info, weights, reduction)
        assert set(got) == {"W", "B"}
        for k in weights:
            assert got[k].shape == weights[k].shape
            np.testing.assert_allclose(got[k], scale * expected[k], rtol=1e-10, atol=1e-12, err_msg=reduction + k)


@pytest.mark.parametrize("n, hidden", [(1, 13), (23, 13), (9, 13), (6, 4)])
def test_neural_network_gradients_match_jax_grad(n, hidden):
    rng = np.random.RandomState(100 + n)
    X, y = _batch(rng, n)
    weights = F.init_neural_network(rng, 13, hidden)
    expected = _jax_grads(F.forward_neural_network, X, y, weights)
    _, info = F.forward_neural_network(X, y, weights)
    for reduction, scale in (("mean", 1), ("sum", n)):
        got = F.neural_network_gradients(info, weights, reduction)
        for k in weights:
            assert got[k].shape == weights[k].shape
            np.testing.assert_allclose(got[k], scale * expected[k], rtol=1e-10, atol=1e-12, err_msg=reduction + k)


def test_the_books_neural_network_gradients_are_half_the_sum_with_one_shared_hidden_bias():
    # erratum 7: dL/dP = -(y - P) without the 2, and dL/dB1 summed over the hidden units as well
    rng = np.random.RandomState(3)
    X, y = _batch(rng, 23)
    weights = F.init_neural_network(rng, 13)
    _, info = F.forward_neural_network(X, y, weights)
    summed = F.neural_network_gradients(info, weights, "sum")
    got = F.neural_network_gradients(info, weights, "book")
    for k in ("W1", "W2", "B2"):
        np.testing.assert_allclose(got[k], summed[k] / 2, rtol=1e-12)
    assert got["B1"].shape == (1, 13)
    np.testing.assert_allclose(got["B1"], np.full((1, 13), summed["B1"].sum() / 2), rtol=1e-12)


def test_linear_regression_hand_computed_values():
    X, y = np.array([[1.0], [2.0]]), np.array([[1.0], [5.0]])
    weights = {"W": np.array([[2.0]]), "B": np.array([[0.0]])}
    loss, info = F.forward_linear_regression(X, y, weights)
    assert loss == pytest.approx(1.0)  # P = 2, 4; residuals y - P = -1, 1
    grads = F.loss_gradients(info, weights, "mean")
    assert grads["W"][0, 0] == pytest.approx(-1.0)  # -2/2 * (1 * -1 + 2 * 1)
    assert grads["B"][0, 0] == pytest.approx(0.0)


def test_batches_walk_through_a_permutation_and_reshuffle_each_pass():
    X = np.arange(10.0).reshape(10, 1)
    got = list(F.batches(np.random.RandomState(0), X, X.copy(), batch_size=4, n_iter=7))
    assert [len(b[0]) for b in got] == [4, 4, 2, 4, 4, 2, 4]
    first, second = (np.concatenate([b[0] for b in got[i : i + 3]]).ravel() for i in (0, 3))
    assert sorted(first) == sorted(second) == list(range(10))
    assert list(first) != list(second)
    assert all(np.array_equal(xb, yb) for xb, yb in got)  # rows of X and y stay paired


def test_batches_follow_numpys_legacy_global_stream():
    # the book calls np.random.seed(seed), then draws weights and permutations from the global generator
    X = np.arange(30.0).reshape(30, 1)
    np.random.seed(5)
    np.random.randn(3)
    expected = X[np.random.permutation(30)][:7]
    rng = np.random.RandomState(5)
    rng.randn(3)
    np.testing.assert_array_equal(next(F.batches(rng, X, X, 7, 1))[0], expected)


def test_least_squares_reproduces_the_books_fit(boston):
    X_train, X_test, y_train, y_test = boston
    weights = F.least_squares(X_train, y_train)
    preds = F.predict_regression("linear_regression", X_test, weights)
    assert round(float(metrics.mae(preds, y_test)), 4) == book.CH02["least squares"]["mae"]
    assert round(float(metrics.rmse(preds, y_test)), 4) == book.CH02["least squares"]["rmse"]


def test_least_squares_recovers_exact_coefficients():
    rng = np.random.RandomState(1)
    X = rng.randn(40, 3)
    y = X @ np.array([[1.0], [-2.0], [0.5]]) + 3.0
    weights = F.least_squares(X, y)
    np.testing.assert_allclose(weights["W"].ravel(), [1.0, -2.0, 0.5], atol=1e-10)
    np.testing.assert_allclose(weights["B"], [[3.0]], atol=1e-10)


@pytest.mark.parametrize(
    "model, seed, n_iter, key",
    [
        ("linear_regression", LR_SEED, 1000, "linear regression"),
        ("neural_network", NN_SEED, 10000, "two-layer net"),
    ],
)
def test_the_books_gradients_reproduce_its_figures(boston, model, seed, n_iter, key):
    X_train, X_test, y_train, y_test = boston
    weights, losses = F.train_regression(
        model, X_train, y_train, n_iter=n_iter, learning_rate=0.001, batch_size=23, seed=seed, reduction="book"
    )
    preds = F.predict_regression(model, X_test, weights)
    assert round(float(metrics.mae(preds, y_test)), 4) == book.CH02[key]["mae"]
    assert round(float(metrics.rmse(preds, y_test)), 4) == book.CH02[key]["rmse"]
    assert losses.shape == (n_iter,) and np.all(np.isfinite(losses))


def test_averaged_gradients_train(boston):
    X_train, _, y_train, _ = boston
    _, losses = F.train_regression("neural_network", X_train, y_train, n_iter=3000, seed=1, learning_rate=0.01)
    assert losses[-300:].mean() < 0.2 * losses[:20].mean()


def test_bad_arguments_are_rejected():
    X, y = np.ones((4, 13)), np.ones((4, 1))
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.train_regression("linear_regression", X, y, reduction="avg")
    with pytest.raises(ValueError, match="model must be one of"):
        F.train_regression("svm", X, y)
    with pytest.raises(ValueError, match=r"expected y of shape \(4, 1\), got \(4,\)"):
        F.train_regression("linear_regression", X, np.ones(4))
    weights = F.init_linear_regression(np.random.RandomState(0), 13)
    with pytest.raises(ValueError, match=r"expected X of shape \(batch, 13\), got \(4, 12\)"):
        F.forward_linear_regression(np.ones((4, 12)), y, weights)


# ---------------------------------------------------------------- property tests (tests/strategies.py)


@functools.cache
def fundamentals_comparison():
    def both(X, y, lin, net):
        out = {}
        for name, forward, gradients, weights in (
            ("linear regression", forward_linear_regression, loss_gradients, lin),
            ("neural network", forward_neural_network, neural_network_gradients, net),
        ):
            for reduction, scale in (("mean", 1), ("sum", X.shape[0])):  # "sum": the gradient of batch * mean
                manual = gradients(forward(X, y, weights)[1], weights, reduction=reduction)
                auto = jax.grad(lambda w, f=forward, s=scale: s * f(X, y, w)[0])(weights)
                out[f"{name} ({reduction})"] = manual, auto
        return out

    return jax.jit(both)


@PROPERTY
@given(st.data(), st.sampled_from(((1, 1), (8, 9))))
def test_fundamentals_gradients(data, shape):
    """Chapter 2's loss_gradients and neural_network_gradients against jax.grad of their forward's loss."""
    b, n_in = shape
    lin = {"W": draw(data, (n_in, 1), 2.0), "B": draw(data, (1, 1), 2.0)}
    net = {
        "W1": draw(data, (n_in, 3), 2.0),
        "B1": draw(data, (1, 3), 2.0),
        "W2": draw(data, (3, 1), 2.0),
        "B2": draw(data, (1, 1), 2.0),
    }
    to_jax = lambda t: jax.tree.map(jnp.asarray, t)
    for name, (manual, auto) in fundamentals_comparison()(
        to_jax(draw(data, (b, n_in))), to_jax(draw(data, (b, 1))), to_jax(lin), to_jax(net)
    ).items():
        assert_close(manual, auto, name)
