"""fdl.layers.conv: the conv2d layer: shapes, initialisation, the three implementations, models mixing conv and
dense layers, property tests, bad input."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fdl.layers import dense, flatten, serial
from fdl.layers.conv import conv2d
from fdl.losses import softmax_cross_entropy
from fdl.ops.conv_loops import conv1d_loops
from fdl.precision import matmul_precision
from fdl.testing import check_model, check_vjp
from tests.strategies import PROPERTY, assert_vjps_agree, call, draw, model_fn, random_params, seed


def test_shapes_and_param_name(key):
    layer = conv2d(4, 3, "tanh")
    params = layer.init(key, (2, 5, 6))
    assert set(params) == {"W"} and params["W"].shape == (2, 4, 3, 3)
    assert layer.output_shape((2, 5, 6)) == (4, 5, 6)
    assert layer.apply(params, jnp.ones((3, 2, 5, 6))).shape == (3, 4, 5, 6)
    flat = conv2d(4, 3, flatten=True)
    assert flat.output_shape((2, 5, 6)) == (4 * 5 * 6,)
    assert flat.apply(params, jnp.ones((3, 2, 5, 6))).shape == (3, 120)


@pytest.mark.parametrize(
    "weight_init, expected",
    [
        ("standard", 1.0),
        ("glorot", math.sqrt(2 / (1 * 25 + 32 * 25))),  # fans in * k * k and out * k * k
        ("book_glorot", 2 / (1 + 32)),  # the book's code: channels only, no square root
    ],
)
def test_weight_init_scales(weight_init, expected):
    W = conv2d(32, 5, weight_init=weight_init).init(jax.random.key(1), (1, 28, 28))["W"]
    assert abs(float(jnp.std(W)) / expected - 1) < 0.1


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("impl", ["auto", "slices", "im2col", "loops"])
def test_implementations_give_the_same_layer(impl, channels):
    x = jax.random.normal(jax.random.key(2), (2, channels, 4, 5))
    params = conv2d(3, 3).init(jax.random.key(3), (channels, 4, 5))

    def out_and_grad(layer):  # float32 params: full float32, not GPUs' default TF32 (issue 14)
        with matmul_precision("highest"):
            return jax.value_and_grad(lambda p: jnp.sum(jnp.tanh(layer.apply(p, x))))(params)

    fast, other = out_and_grad(conv2d(3, 3, impl="xla")), out_and_grad(conv2d(3, 3, impl=impl))
    for a, b in zip(jax.tree.leaves(fast), jax.tree.leaves(other), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("impl, channels", [("xla", 2), ("im2col", 2), ("slices", 2), ("slices", 1), ("auto", 1)])
def test_cnn_model_manual_vs_autodiff_with_dropout(impl, channels):
    # The book's CNN in miniature: conv (tanh, dropout, flatten) -> dense; dropout masks drawn from one key.
    model = serial(conv2d(3, 3, "tanh", weight_init="glorot", keep_prob=0.8, flatten=True, impl=impl), dense(4))
    params = model.init(jax.random.key(4), (channels, 5, 4), jnp.float64)
    x = jax.random.normal(jax.random.key(5), (3, channels, 5, 4), jnp.float64)
    y = jax.nn.one_hot(jnp.array([0, 3, 1]), 4, dtype=jnp.float64)
    check_model(model, params, x, y, softmax_cross_entropy, key=jax.random.key(6), train=True)


@pytest.mark.parametrize("grad", ["manual", "autodiff"])
@pytest.mark.parametrize("impl", ["auto", "slices"])
def test_formulations_give_the_same_model(impl, grad):
    # The ch. 7 ConvNet in miniature (1 -> 3 -> 2 channels: conv2d_auto picks the slices form for the first
    # layer on a CPU, XLA's convolution for the second) against the same model on XLA's convolution throughout,
    # in one gradient mode: loss and gradients (params and input) equal to float64 rounding.
    def model(impl):
        return serial(
            conv2d(3, 5, "tanh", weight_init="glorot", impl=impl),
            conv2d(2, 3, "tanh", weight_init="glorot", flatten=True, impl=impl),
            dense(4),
        )

    params = model("xla").init(jax.random.key(10), (1, 6, 5), jnp.float64)
    x = jax.random.normal(jax.random.key(11), (3, 1, 6, 5), jnp.float64)
    y = jax.nn.one_hot(jnp.array([0, 3, 1]), 4, dtype=jnp.float64)

    def loss_of(impl):
        layers = model(impl)
        return lambda p, x: softmax_cross_entropy(layers.apply(p, x, grad=grad), y, grad=grad)

    check_vjp(loss_of(impl), loss_of("xla"), (params, x), arg_names=("params", "x"), numerical=False)


def test_auto_picks_the_formulation_when_traced_and_xla_is_the_default():
    # impl="auto": a one-channel layer traces to XLA's convolution on a GPU only; with 4 channels, to XLA's
    # convolution everywhere. The default, "xla", always traces to XLA's convolution.
    def program(channels, **impl):
        x, W = jnp.ones((2, channels, 6, 6)), jnp.ones((channels, 3, 5, 5))
        return str(jax.make_jaxpr(lambda W: conv2d(3, 5, **impl).apply({"W": W}, x))(W))

    assert ("conv_general_dilated" in program(1, impl="auto")) == (jax.default_backend() != "cpu")
    assert "conv_general_dilated" in program(4, impl="auto")
    assert "conv_general_dilated" in program(1)


def test_two_conv_layers_then_flatten_layer_then_dense():
    model = serial(
        conv2d(3, 3, "tanh", weight_init="glorot"),
        conv2d(2, 1, "sigmoid", weight_init="glorot"),
        flatten(),
        dense(5, "tanh", weight_init="glorot"),
        dense(2),
    )
    assert model.output_shape((1, 4, 4)) == (2,)
    params = model.init(jax.random.key(7), (1, 4, 4), jnp.float64)
    x = jax.random.normal(jax.random.key(8), (2, 1, 4, 4), jnp.float64)
    check_model(model, params, x, jnp.eye(2, dtype=jnp.float64), softmax_cross_entropy)


def test_dropout_is_the_books_at_inference(key):
    layer, plain = conv2d(2, 3, keep_prob=0.5), conv2d(2, 3)
    params = layer.init(key, (1, 4, 4))
    x = jnp.ones((1, 1, 4, 4))
    np.testing.assert_allclose(layer.apply(params, x), 0.5 * plain.apply(params, x), rtol=1e-6)
    assert not np.allclose(layer.apply(params, x, key=key, train=True), 0.5 * plain.apply(params, x))


def test_bad_arguments_and_inputs(key):
    with pytest.raises(ValueError, match="param_size must be odd"):
        conv2d(4, 4)
    with pytest.raises(ValueError, match="impl must be one of"):
        conv2d(4, 3, impl="fft")
    with pytest.raises(ValueError, match="unknown weight_init"):
        conv2d(4, 3, weight_init="he")
    with pytest.raises(ValueError, match="out_channels must be a positive integer"):
        conv2d(0, 3)
    with pytest.raises(ValueError, match=r"expects images of shape \(channels, height, width\)"):
        conv2d(4, 3).init(key, (784,))
    layer = conv2d(4, 3)
    params = layer.init(key, (2, 5, 5))
    with pytest.raises(ValueError, match="expected a 4-D array"):
        layer.apply(params, jnp.ones((2, 5, 5)))
    with pytest.raises(ValueError, match="input has 3 channels but the kernel expects 2"):
        layer.apply(params, jnp.ones((1, 3, 5, 5)))


def test_without_bias_the_params_are_drawn_as_before(key):
    # use_bias=False (the default) keeps one key for W: the same draws as before the bias option existed.
    W = conv2d(4, 3, weight_init="glorot").init(key, (2, 5, 5))["W"]
    np.testing.assert_array_equal(W, math.sqrt(2 / (2 * 9 + 4 * 9)) * jax.random.normal(key, (2, 4, 3, 3), jnp.float32))


def test_use_bias_adds_one_bias_per_channel(key):
    layer = conv2d(3, 3, use_bias=True)
    params = layer.init(key, (2, 4, 5))
    assert set(params) == {"W", "B"} and params["B"].shape == (1, 3, 1, 1)
    x = jax.random.normal(key, (2, 2, 4, 5))
    B = jnp.array([1.0, -2.0, 3.0]).reshape(1, 3, 1, 1)
    no_bias = conv2d(3, 3).apply({"W": params["W"]}, x)
    np.testing.assert_allclose(layer.apply({"W": params["W"], "B": B}, x), no_bias + B, rtol=1e-6)
    assert "bias" in layer.name


def test_pytorch_uniform_with_bias_draws_the_book_ch07_init(key):
    # PyTorch's nn.Conv2d default (the book's ch. 7): W and B from U(-b, b), b = 1 / sqrt(in * k * k), with
    # the layer's key split into (W's key, B's key), as experiments/ch07_autodiff.py drew them.
    params = conv2d(32, 5, use_bias=True, weight_init="pytorch_uniform").init(key, (2, 28, 28))
    bound = 1 / math.sqrt(2 * 25)
    kw, kb = jax.random.split(key)
    np.testing.assert_array_equal(params["W"], jax.random.uniform(kw, (2, 32, 5, 5), jnp.float32, -bound, bound))
    np.testing.assert_array_equal(params["B"], jax.random.uniform(kb, (1, 32, 1, 1), jnp.float32, -bound, bound))
    assert float(jnp.max(jnp.abs(params["W"]))) <= bound and float(jnp.max(jnp.abs(params["W"]))) > 0.9 * bound


def test_weight_init_function_and_bias_init(key):
    he = jax.nn.initializers.he_normal(in_axis=0, out_axis=1)
    params = conv2d(4, 3, use_bias=True, weight_init=he).init(key, (2, 5, 5), jnp.float64)
    kw, _ = jax.random.split(key)
    np.testing.assert_array_equal(params["W"], he(kw, (2, 4, 3, 3), jnp.float64))
    np.testing.assert_array_equal(params["B"], jnp.zeros((1, 4, 1, 1)))  # a function weight_init: zero bias
    assert params["W"].dtype == params["B"].dtype == jnp.float64
    params = conv2d(4, 3, use_bias=True, weight_init=he, bias_init="standard").init(key, (2, 5, 5))
    assert float(jnp.std(params["B"])) > 0.1


def test_conv_model_with_bias_manual_vs_autodiff():
    model = serial(
        conv2d(3, 3, "tanh", use_bias=True, weight_init="pytorch_uniform"),
        conv2d(2, 3, "relu", use_bias=True, flatten=True, weight_init="glorot"),
        dense(2),
    )
    params = model.init(jax.random.key(8), (2, 4, 5), jnp.float64)
    x = jax.random.normal(jax.random.key(9), (3, 2, 4, 5), jnp.float64)
    check_model(model, params, x, jnp.eye(2, dtype=jnp.float64)[jnp.array([0, 1, 1])], softmax_cross_entropy)


def test_bad_bias_and_init_arguments(key):
    with pytest.raises(ValueError, match="bias_init was given but use_bias is False"):
        conv2d(4, 3, bias_init="zeros")
    with pytest.raises(TypeError, match="use_bias must be True or False"):
        conv2d(4, 3, use_bias=1)
    with pytest.raises(ValueError, match="conv2d: unknown bias_init 'he'"):
        conv2d(4, 3, use_bias=True, bias_init="he")
    with pytest.raises(TypeError, match="weight_init must be an initialiser name"):
        conv2d(4, 3, weight_init=0.1)
    with pytest.raises(ValueError, match=r"returned shape \(3,\) for a parameter of shape \(2, 4, 3, 3\)"):
        conv2d(4, 3, weight_init=lambda k, shape, dtype: jnp.zeros(3)).init(key, (2, 5, 5))


# ---------------------------------------------------------------- property tests (tests/strategies.py)


@functools.cache
def conv_models():
    """Small models of a conv2d layer (each activation, flattening or not, with and without dropout) and a dense one."""
    return tuple(
        serial(conv2d(2, 3, act, flatten=flat, keep_prob=keep), flatten(), dense(2))
        for act, flat, keep in (("tanh", False, 1.0), ("sigmoid", True, 0.8), ("leaky_relu", True, 1.0))
    )


@PROPERTY
@given(st.data(), st.sampled_from(((1, 1), (3, 4))))
def test_conv_1d_and_conv_layers(data, shape):
    """The chapter's 1-D loops (with and without a batch) and conv2d layers in small models."""
    b, h = shape
    cases = {
        "conv1d_loops": (call(conv1d_loops), (draw(data, (h + 2,)), draw(data, (3,))), 2),
        "conv1d_loops batched": (call(conv1d_loops), (draw(data, (b, h)), draw(data, (3,))), 2),
    }
    for model in conv_models():
        params = random_params(data, model.init(jax.random.key(0), (1, h, 3), jnp.float64))
        cases[model.name] = (model_fn(model), (params, draw(data, (b, 1, h, 3)), jax.random.key(seed(data))), 2)
    assert_vjps_agree(cases, seed(data))


# ---------------------------------------------------------------- the bad-input catalogue's conv2d layer cases


def test_wrong_shapes_conv_and_recurrent():
    """The conv2d layer's case of the bad-input catalogue's test; conv2d's and the recurrent layer's are in their
    test files under the same name."""
    with pytest.raises(ValueError, match=r"expects images of shape \(channels, height, width\) per example"):
        conv2d(2, 3).init(jax.random.key(0), (28, 28))


def test_non_positive_hyperparameters_conv_recurrent_text():
    """The conv2d layer's cases; the recurrent layer's and the text helpers' are in their test files under the same
    name."""
    for make, message in [
        (lambda: conv2d(0, 3), "conv2d out_channels must be a positive integer, got 0"),
        (lambda: conv2d(2, 0), "conv2d param_size must be a positive integer, got 0"),
        (lambda: conv2d(2, 4), "param_size must be odd"),
    ]:
        with pytest.raises(ValueError, match=message):
            make()


def test_unknown_names_conv_and_recurrent():
    """The conv2d layer's cases; the recurrent layer's are in tests/recurrent/test_layers.py under the same name."""
    for make, message in [
        (lambda: conv2d(2, 3, "gelu"), "unknown activation 'gelu'"),
        (lambda: conv2d(2, 3, weight_init="lecun"), "unknown weight_init 'lecun'"),
        (
            lambda: conv2d(2, 3, impl="fft"),
            r"impl must be one of \['auto', 'im2col', 'loops', 'slices', 'xla'\], got 'fft'",
        ),
    ]:
        with pytest.raises(ValueError, match=message):
            make()


def test_unknown_dropout_mode_is_refused_when_the_layer_is_made():
    """The conv2d layer's case; the dense and dropout layers' are in their test files under the same name."""
    for make in (lambda: conv2d(2, 3, keep_prob=0.5, dropout_mode="gaussian"),):
        with pytest.raises(ValueError, match=r"dropout mode must be one of \('book', 'inverted'\), got 'gaussian'"):
            make()
