"""fdl.layers.dense: book parameter names, initialisation, property tests, integer and float16 input, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fdl import dense, losses
from fdl.init import init_scale
from tests.helpers import TINY_MODEL, assert_refused_before_writing
from tests.strategies import PROPERTY, assert_vjps_agree, draw, model_fn, random_params, seed

KEY = jax.random.key(0)


def test_dense_params_have_book_names_and_shapes():
    params = dense(4)[0](KEY, (3,))
    assert set(params) == {"W", "B"}
    assert params["W"].shape == (3, 4) and params["B"].shape == (1, 4)


@pytest.mark.parametrize(
    "weight_init,expected", [("standard", 1.0), ("glorot", np.sqrt(2 / 1100)), ("book_glorot", 2 / 1100)]
)
def test_init_scales(weight_init, expected):
    assert init_scale(weight_init, 1000, 100) == pytest.approx(expected)
    W = dense(100, weight_init=weight_init).init(KEY, (1000,))["W"]
    assert float(jnp.std(W)) == pytest.approx(expected, rel=0.02)


def test_dense_pytorch_uniform_draws_weights_and_bias_with_fan_in():
    # PyTorch's nn.Linear default: W and B from U(-1/sqrt(in), 1/sqrt(in)), the layer's key split (W, B).
    params = dense(10, weight_init="pytorch_uniform").init(KEY, (25,))
    kw, kb = jax.random.split(KEY)
    np.testing.assert_array_equal(params["W"], jax.random.uniform(kw, (25, 10), jnp.float32, -0.2, 0.2))
    np.testing.assert_array_equal(params["B"], jax.random.uniform(kb, (1, 10), jnp.float32, -0.2, 0.2))


def test_dense_weight_init_function_zero_bias_unless_bias_init():
    glorot = jax.nn.initializers.glorot_normal()
    params = dense(100, weight_init=glorot).init(KEY, (1000,))
    kw, _ = jax.random.split(KEY)
    np.testing.assert_array_equal(params["W"], glorot(kw, (1000, 100), jnp.float32))
    np.testing.assert_array_equal(params["B"], jnp.zeros((1, 100)))
    B = dense(100, weight_init=glorot, bias_init="standard").init(KEY, (1000,))["B"]
    assert 0.7 < float(jnp.std(B)) < 1.3
    B = dense(100, weight_init="glorot", bias_init="zeros").init(KEY, (1000,))["B"]
    np.testing.assert_array_equal(B, jnp.zeros((1, 100)))


def test_dense_named_init_draws_as_before():
    # A named weight_init draws W and B with the same scale from the split key (unchanged by the function option).
    params = dense(4, weight_init="book_glorot").init(KEY, (3,))
    kw, kb = jax.random.split(KEY)
    np.testing.assert_array_equal(params["W"], (2 / 7) * jax.random.normal(kw, (3, 4), jnp.float32))
    np.testing.assert_array_equal(params["B"], (2 / 7) * jax.random.normal(kb, (1, 4), jnp.float32))


# ---------------------------------------------------------------- property tests (tests/strategies.py)

DENSE = {
    act: dense(3, act, keep_prob=keep)
    for act, keep in (("linear", 0.7), ("sigmoid", 1.0), ("tanh", 0.9), ("relu", 0.8), ("leaky_relu", 1.0))
}


@PROPERTY
@given(st.data(), st.sampled_from(((1, 1), (8, 9))))
def test_dense_layers(data, shape):
    """A dense layer with each activation (some with dropout, train=True, the same mask on both paths)."""
    b, n_in = shape
    x = draw(data, (b, n_in))
    cases = {}
    for act, layer in DENSE.items():
        params = random_params(data, layer.init(jax.random.key(0), (n_in,), jnp.float64))
        cases[f"dense(3, {act})"] = (model_fn(layer), (params, x, jax.random.key(seed(data))), 2)
    # relu's kink inside a layer: zero rows of x and a zero bias put exact zeros into the activation
    layer = DENSE["relu"]
    params = random_params(data, layer.init(jax.random.key(0), (n_in,), jnp.float64))
    params = {"W": params["W"], "B": np.zeros_like(params["B"])}
    zero_rows = data.draw(hnp.arrays(np.bool_, (b, 1)))
    cases["dense(3, relu) at its kink"] = (
        model_fn(layer),
        (params, np.where(zero_rows, 0.0, x), jax.random.key(seed(data))),
        2,
    )
    assert_vjps_agree(cases, seed(data))


# ---------------------------------------------------------------- integer and float16 input


def test_integer_input_to_differentiable_code():
    """Dense layers promote integer pixels to the params' dtype (the dense layer's case of the bad-input
    catalogue's test; the activations', conv2d's and the recurrent layer's are in their test files under the same
    name)."""
    params = TINY_MODEL.init(jax.random.key(0), (4,))
    ints = jnp.arange(8).reshape(2, 4)
    np.testing.assert_array_equal(TINY_MODEL.apply(params, ints), TINY_MODEL.apply(params, ints.astype(jnp.float32)))


def test_float16_gradients_are_float16_and_agree_with_autodiff():
    """float16 is computed in float16 on both paths (no silent upcast, no garbage): manual and autodiff agree to
    float16 precision."""
    x = jnp.linspace(-3, 3, 12, dtype=jnp.float16).reshape(3, 4)
    params = TINY_MODEL.init(jax.random.key(0), (4,), jnp.float16)

    def grads(grad):
        return jax.grad(
            lambda p: losses.mean_squared_error(
                TINY_MODEL.apply(p, x, grad=grad), jnp.ones((3, 1), jnp.float16), grad=grad
            )
        )(params)

    for m, a in zip(jax.tree.leaves(grads("manual")), jax.tree.leaves(grads("autodiff")), strict=True):
        assert m.dtype == jnp.float16
        np.testing.assert_allclose(np.float32(m), np.float32(a), rtol=2e-2, atol=2e-2)


# ---------------------------------------------------------------- bad input

WRONG_SHAPES = {
    "dense on images": (
        lambda: dense(3).init(jax.random.key(0), (28, 28)),
        r"shape \(features,\) per example, got \(28, 28\); put flatten\(\) before it",
    ),
}


@pytest.mark.parametrize("case", sorted(WRONG_SHAPES))
def test_wrong_shapes_and_ranks(case):
    call, message = WRONG_SHAPES[case]
    with pytest.raises(ValueError, match=message):
        call()


HYPERPARAMETERS = {
    "dense neurons": (lambda ck: dense(0), "dense neurons must be a positive integer, got 0"),
    "dense keep_prob 0": (lambda ck: dense(3, keep_prob=0.0), r"dense keep_prob must be in \(0, 1\], got 0.0"),
}


@pytest.mark.parametrize("case", sorted(HYPERPARAMETERS))
def test_non_positive_hyperparameters(tmp_path, case):
    """Refused when given, before anything is read or written: an existing checkpoint is left as it was."""
    assert_refused_before_writing(tmp_path, *HYPERPARAMETERS[case])


UNKNOWN_NAMES = {
    "dense activation": (lambda: dense(3, "relu6"), r"unknown activation 'relu6'; choose one of \['leaky_relu', "),
    "dense weight_init": (
        lambda: dense(3, weight_init="he"),
        r"unknown weight_init 'he'; choose one of \('standard', 'glorot', 'book_glorot', "
        r"'pytorch_uniform', 'zeros'\)",
    ),
}


@pytest.mark.parametrize("case", sorted(UNKNOWN_NAMES))
def test_unknown_names(case):
    call, message = UNKNOWN_NAMES[case]
    with pytest.raises(ValueError, match=message):
        call()


def test_unknown_dropout_mode_is_refused_when_the_layer_is_made():
    """The dense layer's cases; the dropout and conv2d layers' are in their test files under the same name."""
    for make in (lambda: dense(3, keep_prob=0.5, dropout_mode="gaussian"), lambda: dense(3, dropout_mode="gaussian")):
        with pytest.raises(ValueError, match=r"dropout mode must be one of \('book', 'inverted'\), got 'gaussian'"):
            make()
