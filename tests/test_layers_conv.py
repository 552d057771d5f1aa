"""The conv2d layer: shapes, initialisation, the three implementations, models mixing conv and dense layers."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fdl.layers import dense, flatten, serial
from fdl.layers.conv import conv2d
from fdl.losses import softmax_cross_entropy
from fdl.precision import matmul_precision
from fdl.testing import check_model


def test_shapes_and_param_name(key):
    layer = conv2d(4, 3, "tanh")
    params = layer.init(key, (2, 5, 6))
    assert set(params) == {"W"} and params["W"].shape == (2, 4, 3, 3)
    assert layer.output_shape((2, 5, 6)) == (4, 5, 6)
    assert layer.apply(params, jnp.ones((3, 2, 5, 6))).shape == (3, 4, 5, 6)
    flat = conv2d(4, 3, flatten=True)
    assert flat.output_shape((2, 5, 6)) == (4 * 5 * 6,)
    assert flat.apply(params, jnp.ones((3, 2, 5, 6))).shape == (3, 120)


@pytest.mark.parametrize("weight_init, expected", [
    ("standard", 1.0),
    ("glorot", math.sqrt(2 / (1 * 25 + 32 * 25))),   # fans in * k * k and out * k * k
    ("book_glorot", 2 / (1 + 32)),                   # the book's code: channels only, no square root
])
def test_weight_init_scales(weight_init, expected):
    W = conv2d(32, 5, weight_init=weight_init).init(jax.random.key(1), (1, 28, 28))["W"]
    assert abs(float(jnp.std(W)) / expected - 1) < 0.1


@pytest.mark.parametrize("impl", ["im2col", "loops"])
def test_implementations_give_the_same_layer(impl):
    x = jax.random.normal(jax.random.key(2), (2, 2, 4, 5))
    params = conv2d(3, 3).init(jax.random.key(3), (2, 4, 5))

    def out_and_grad(layer):  # float32 params: full float32, not GPUs' default TF32 (issue 14)
        with matmul_precision("highest"):
            return jax.value_and_grad(lambda p: jnp.sum(jnp.tanh(layer.apply(p, x))))(params)

    fast, other = out_and_grad(conv2d(3, 3)), out_and_grad(conv2d(3, 3, impl=impl))
    for a, b in zip(jax.tree.leaves(fast), jax.tree.leaves(other), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("impl", ["xla", "im2col"])
def test_cnn_model_manual_vs_autodiff_with_dropout(impl):
    # The book's CNN in miniature: conv (tanh, dropout, flatten) -> dense; dropout masks drawn from one key.
    model = serial(conv2d(3, 3, "tanh", weight_init="glorot", dropout=0.8, flatten=True, impl=impl), dense(4))
    params = model.init(jax.random.key(4), (2, 5, 4), jnp.float64)
    x = jax.random.normal(jax.random.key(5), (3, 2, 5, 4), jnp.float64)
    y = jax.nn.one_hot(jnp.array([0, 3, 1]), 4, dtype=jnp.float64)
    check_model(model, params, x, y, softmax_cross_entropy, key=jax.random.key(6), train=True)


def test_two_conv_layers_then_flatten_layer_then_dense():
    model = serial(conv2d(3, 3, "tanh", weight_init="glorot"), conv2d(2, 1, "sigmoid", weight_init="glorot"),
                   flatten(), dense(5, "tanh", weight_init="glorot"), dense(2))
    assert model.output_shape((1, 4, 4)) == (2,)
    params = model.init(jax.random.key(7), (1, 4, 4), jnp.float64)
    x = jax.random.normal(jax.random.key(8), (2, 1, 4, 4), jnp.float64)
    check_model(model, params, x, jnp.eye(2, dtype=jnp.float64), softmax_cross_entropy)


def test_dropout_is_the_books_at_inference(key):
    layer, plain = conv2d(2, 3, dropout=0.5), conv2d(2, 3)
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
