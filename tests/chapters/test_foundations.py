"""Chapter 1: derivatives, chains, several inputs and matrices, each against jax.grad; the book's printed checks."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fdl.chapters import foundations as F
from fdl.harness import book

GRID = np.arange(-3, 3, 0.01) + 0.005  # the book's plotting range, shifted off the kink of leaky_relu at 0
NAMES = list(F.FUNCTIONS)


def grad_elementwise(f):
    return jax.vmap(jax.grad(f))


def test_published_checks_match_the_book_to_4_decimals():
    got = F.published_checks()
    assert set(got) == set(book.CH01)
    for name, value in book.CH01.items():
        np.testing.assert_array_equal(np.round(got[name], 4), value, err_msg=name)


def test_published_checks_do_not_touch_global_random_state():
    np.random.seed(7)
    expected = np.random.rand()
    np.random.seed(7)
    F.published_checks()
    assert np.random.rand() == expected


def test_the_books_perturbation_check_agrees_with_the_gradient():
    rng = np.random.RandomState(190204)
    X, W = rng.randn(3, 3), rng.randn(3, 2)
    dLdX = F.matmul_backward(X, W)[0]
    for index in itertools.product(range(3), range(3)):
        assert F.perturb_deriv(lambda X_: F.matmul_forward(X_, W), X, index) == pytest.approx(dLdX[index], abs=1e-6)
    assert round(F.perturb_deriv(lambda X_: F.matmul_forward(X_, W), X, (0, 0)), 4) == 0.2489


@pytest.mark.parametrize("name", NAMES)
def test_each_derivative_matches_jax_grad_and_the_central_difference(name):
    fn = F.FUNCTIONS[name]
    np.testing.assert_allclose(fn.df(GRID), grad_elementwise(fn.f)(jnp.asarray(GRID)), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(F.deriv(fn.f, GRID), fn.df(GRID), atol=1e-6)


def test_deriv_is_the_central_difference():
    # (f(x + d) - f(x - d)) / 2d is exact for a quadratic, even with a large d; a one-sided one would be off by d
    assert F.deriv(F.square, 3.0, delta=0.5) == pytest.approx(6.0, abs=1e-12)


def test_numpy_in_numpy_out_in_float64():
    out = F.chain_deriv([F.FUNCTIONS["sigmoid"], F.FUNCTIONS["leaky_relu"]], GRID)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64


def test_chain_applies_the_first_function_first():
    f = F.chain(lambda x: x + 1, lambda x: 3 * x)
    assert f(2.0) == 9.0


def test_chain_deriv_hand_computed_value():
    # d/dx sigmoid(x^2) at 1 = sigmoid'(1) * 2
    s = 1 / (1 + np.exp(-1.0))
    got = F.chain_deriv([F.FUNCTIONS["square"], F.FUNCTIONS["sigmoid"]], np.float64(1.0))
    assert got == pytest.approx(2 * s * (1 - s), rel=1e-14)
    assert round(float(got), 4) == 0.3932


CHAINS = [c for n in (1, 2, 3) for c in itertools.product(NAMES, repeat=n)] + [
    ("sigmoid", "square", "leaky_relu", "sigmoid", "square"),
    ("leaky_relu",) * 4 + ("sigmoid",) * 4,
]


@pytest.mark.parametrize("names", CHAINS, ids="-".join)
def test_chain_rule_matches_jax_grad_for_chains_of_any_length(names):
    fns = [F.FUNCTIONS[n] for n in names]
    composed = F.chain(*(fn.f for fn in fns))
    expected = grad_elementwise(composed)(jnp.asarray(GRID))
    np.testing.assert_allclose(F.chain_deriv(fns, GRID), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(F.chain_deriv(fns, GRID), F.deriv(composed, GRID), rtol=1e-4, atol=1e-5)


def test_chain_deriv_accepts_plain_pairs_and_runs_under_jit():
    pairs = [(jnp.tanh, lambda x: 1 - jnp.tanh(x) ** 2), (F.sigmoid, F.sigmoid_deriv)]
    x = jnp.linspace(-2.0, 2.0, 9)
    expected = grad_elementwise(F.chain(jnp.tanh, F.sigmoid))(x)
    np.testing.assert_allclose(jax.jit(lambda x: F.chain_deriv(pairs, x))(x), expected, rtol=1e-12)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", ["add", "multiply"])
def test_several_inputs_match_jax_grad(kind, name):
    forward, backward = {"add": (F.add_forward, F.add_backward), "multiply": (F.multiply_forward, F.multiply_backward)}[
        kind
    ]
    fn = F.FUNCTIONS[name]
    rng = np.random.RandomState(0)
    x, y = rng.randn(50) + 0.01, rng.randn(50) + 0.01
    dx, dy = jax.vmap(jax.grad(lambda a, b: forward(a, b, fn), argnums=(0, 1)))(jnp.asarray(x), jnp.asarray(y))
    got_dx, got_dy = backward(x, y, fn)
    np.testing.assert_allclose(got_dx, dx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got_dy, dy, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shapes", [((1, 3), (3, 1)), ((3, 3), (3, 2)), ((2, 1), (1, 4)), ((17, 5), (5, 7))])
@pytest.mark.parametrize("name", NAMES)
def test_matmul_backward_matches_jax_grad(shapes, name):
    rng = np.random.RandomState(sum(shapes[0] + shapes[1]))
    X, W = rng.randn(*shapes[0]), rng.randn(*shapes[1])
    fn = F.FUNCTIONS[name]
    expected = jax.grad(lambda X_, W_: F.matmul_forward(X_, W_, fn), argnums=(0, 1))(jnp.asarray(X), jnp.asarray(W))
    got = F.matmul_backward(X, W, fn)
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)
    assert float(F.matmul_forward(X, W, fn)) == pytest.approx(float(fn.f(X @ W).sum()), rel=1e-14)


@pytest.mark.parametrize("X_shape, W_shape", [((2, 3), (2, 1)), ((3,), (3, 1)), ((2, 3), (3,))])
def test_matmul_rejects_mismatched_shapes(X_shape, W_shape):
    for f in (F.matmul_forward, F.matmul_backward):
        with pytest.raises(ValueError, match=r"expected X \(n, k\) and W \(k, m\)"):
            f(np.ones(X_shape), np.ones(W_shape))


def test_empty_chains_are_rejected():
    with pytest.raises(ValueError, match="at least one"):
        F.chain()
    with pytest.raises(ValueError, match="at least one"):
        F.chain_deriv([], 1.0)
    with pytest.raises(ValueError, match=r"\(f, df\) pair"):
        F.chain_deriv([(F.square,)], 1.0)
