"""Layers and models: shapes, book parameter names, init scales, both gradient paths agree."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fdl import dense, dropout, flatten, serial
from fdl.init import init_scale
from fdl.losses import mean_squared_error, softmax_cross_entropy
from fdl.testing import check_model

KEY = jax.random.key(0)


def normal(seed, shape):
    return jax.random.normal(jax.random.key(seed), shape, jnp.float64)


def test_dense_params_have_book_names_and_shapes():
    params = dense(4)[0](KEY, (3,))
    assert set(params) == {"W", "B"}
    assert params["W"].shape == (3, 4) and params["B"].shape == (1, 4)


@pytest.mark.parametrize("weight_init,expected", [("standard", 1.0), ("glorot", np.sqrt(2 / 1100)),
                                                  ("book_glorot", 2 / 1100)])
def test_init_scales(weight_init, expected):
    assert init_scale(weight_init, 1000, 100) == pytest.approx(expected)
    W = dense(100, weight_init=weight_init).init(KEY, (1000,))["W"]
    assert float(jnp.std(W)) == pytest.approx(expected, rel=0.02)


MODELS = {
    "linear": (lambda: serial(dense(1)), (13,), 1),
    "one_hidden": (lambda: serial(dense(13, "sigmoid"), dense(1)), (13,), 1),
    "two_hidden": (lambda: serial(dense(13, "sigmoid"), dense(13, "sigmoid"), dense(1)), (13,), 1),
    "mnist_dropout": (lambda: serial(dense(17, "tanh", weight_init="glorot", keep_prob=0.8), dense(10)), (20,), 10),
    "deep_relu": (lambda: serial(dense(8, "relu"), dense(6, "leaky_relu", keep_prob=0.5), dense(3, "tanh"),
                                 dense(4)), (5,), 4),
    "flatten_dense": (lambda: serial(flatten(), dense(6, "sigmoid"), dropout(0.9), dense(3)), (2, 3, 2), 3),
}


@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_manual_equals_autodiff(name, batch):
    make, in_shape, n_out = MODELS[name]
    model = make()
    params = model.init(KEY, in_shape, jnp.float64)
    x = normal(1, (batch, *in_shape))
    assert model.output_shape(in_shape) == (n_out,)
    y = normal(2, (batch, n_out))
    check_model(model, params, x, y, mean_squared_error, key=jax.random.key(3), train=True)
    if n_out > 1:
        y = jax.nn.one_hot(jnp.arange(batch) % n_out, n_out, dtype=jnp.float64)
        check_model(model, params, x, y, softmax_cross_entropy, key=jax.random.key(4), train=True)


def test_dropout_book_semantics_at_inference_and_training():
    model = serial(dense(50, "linear", keep_prob=0.5))
    params = model.init(KEY, (4,))
    x = jnp.ones((3, 4))
    full = dense(50).apply(params[0], x)
    np.testing.assert_allclose(model.apply(params, x), 0.5 * full, rtol=1e-6)
    train = model.apply(params, x, key=KEY, train=True)
    assert set(np.unique(np.isclose(train, full))) == {True, False}
    with pytest.raises(ValueError, match="needs a PRNG key"):
        model.apply(params, x, train=True)


def test_same_key_same_dropout_in_both_paths():
    model = serial(dense(5, "tanh", keep_prob=0.6), dense(2))
    params = model.init(KEY, (3,))
    x = normal(5, (4, 3)).astype(jnp.float32)
    a = model.apply(params, x, key=KEY, train=True, grad="manual")
    b = model.apply(params, x, key=KEY, train=True, grad="autodiff")
    np.testing.assert_array_equal(a, b)


def test_bad_inputs_name_the_layer():
    model = serial(dense(4, "sigmoid"), dense(1))
    params = model.init(KEY, (13,))
    with pytest.raises(ValueError, match=r"layer 0 \(dense\(4, sigmoid\)\): weight_multiply: input has 12 features"):
        model.apply(params, jnp.ones((2, 12)))
    with pytest.raises(ValueError, match=r"layer 0 .*expected a 2-D array"):
        model.apply(params, jnp.ones((2, 13, 1)))
    with pytest.raises(ValueError, match="put flatten"):
        dense(3).init(KEY, (1, 28, 28))
    with pytest.raises(ValueError, match="params for 1 layers"):
        model.apply(params[:1], jnp.ones((2, 13)))
    with pytest.raises(ValueError, match="unknown weight_init"):
        dense(3, weight_init="he")
    with pytest.raises(ValueError, match="neurons must be a positive integer"):
        dense(0)
    with pytest.raises(ValueError, match="keep_prob"):
        dense(3, keep_prob=0.0)
    with pytest.raises(TypeError, match="not a Layer"):
        serial(dense)


def test_reshape_layer_round_trip_and_gradients():
    from fdl.layers import reshape
    model = serial(dense(12, "tanh"), reshape((3, 2, 2)), flatten(), dense(2))
    assert model.output_shape((5,)) == (2,)
    params = model.init(KEY, (5,), jnp.float64)
    check_model(model, params, normal(1, (4, 5)), normal(2, (4, 2)), mean_squared_error)
    with pytest.raises(ValueError, match=r"cannot become \(5, 5\)"):
        reshape((5, 5)).apply({}, jnp.ones((2, 12)))


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
