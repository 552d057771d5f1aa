"""fdl.layers.core: serial models (both gradient paths agree), flatten, reshape, the dropout layer and the
dropout semantics every layer shares, summary; init as one compiled program (the eager draws bit for bit, under
vmap too, freed with its model); property tests and bad input."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fdl import conv2d, dense, dropout, flatten, layers, losses, serial
from fdl.init import normal as scaled_normal
from fdl.layers import reshape
from fdl.layers.core import summary
from fdl.losses import mean_squared_error, softmax_cross_entropy
from fdl.recurrent import rnn_layer, stack
from fdl.testing import check_model
from tests.helpers import TINY_MODEL, assert_refused_before_writing, normal
from tests.strategies import PROPERTY, assert_vjps_agree, draw, model_fn, random_params, seed, targets

KEY = jax.random.key(0)


MODELS = {
    "linear": (lambda: serial(dense(1)), (13,), 1),
    "one_hidden": (lambda: serial(dense(13, "sigmoid"), dense(1)), (13,), 1),
    "two_hidden": (lambda: serial(dense(13, "sigmoid"), dense(13, "sigmoid"), dense(1)), (13,), 1),
    "mnist_dropout": (lambda: serial(dense(17, "tanh", weight_init="glorot", keep_prob=0.8), dense(10)), (20,), 10),
    "deep_relu": (
        lambda: serial(dense(8, "relu"), dense(6, "leaky_relu", keep_prob=0.5), dense(3, "tanh"), dense(4)),
        (5,),
        4,
    ),
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


# ---------------------------------------------------------------- init: the same draws eagerly, jitted and vmapped


def eager_init(layers, key, input_shape, dtype):
    """The layers initialised one after the other, eagerly: serial's and stack's init before it was compiled."""
    params, shape = [], tuple(input_shape)
    for layer, k in zip(layers, jax.random.split(key, len(layers)), strict=True):
        params.append(layer.init(k, shape, dtype))
        shape = layer.output_shape(shape)
    return params


def a_function(key, shape, dtype):
    """A function as weight_init / bias_init (drawing with fdl.init's scaled normal)."""
    return scaled_normal(key, shape, 0.1, dtype)


# every layer kind; every initialiser of fdl.init (each name and a function) as a dense and as a conv2d weight or bias
INIT_MODELS = {
    "layers": (
        serial,
        (
            conv2d(3, 3, "tanh", weight_init="standard", use_bias=True, bias_init="book_glorot"),
            conv2d(2, 3, weight_init="pytorch_uniform", use_bias=True, bias_init=a_function),
            conv2d(2, 3, weight_init="glorot", use_bias=True, bias_init="zeros", flatten=True),
            dense(6, "relu", weight_init="book_glorot", bias_init="standard", keep_prob=0.8),
            dropout(0.5),
            reshape((2, 3)),
            flatten(),
            dense(3, weight_init=a_function, bias_init="pytorch_uniform"),
            dense(2, weight_init="glorot", bias_init="zeros"),
        ),
        (1, 6, 5),
    ),
    "recurrent": (
        stack,
        (
            rnn_layer(5, 4, "rnn", weight_init="book"),
            rnn_layer(6, 3, "gru", weight_init="glorot"),
            rnn_layer(4, 2, "lstm", weight_init="standard"),
            rnn_layer(3, 2, "rnn", weight_scale=0.05),
        ),
        (4,),
    ),
}


def assert_bitwise_equal(got, want):
    assert jax.tree.structure(got) == jax.tree.structure(want)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_array_equal(np.asarray(g), np.asarray(w), strict=True)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("kind", sorted(INIT_MODELS))
def test_compiled_init_draws_the_eager_values_bit_for_bit(kind, dtype):
    """serial's and stack's init under jax.jit (one program): every initialiser and layer kind draws exactly
    what the layers draw one by one, eagerly (fdl.init.normal's optimization barrier)."""
    combine, layers_, shape = INIT_MODELS[kind]
    key = jax.random.key(7)
    params = jax.jit(combine(*layers_).init, static_argnums=(1, 2))(key, shape, dtype)
    assert_bitwise_equal(params, eager_init(layers_, key, shape, dtype))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_init_vmapped_over_keys_gives_each_key_its_own_params(dtype):
    """``jax.vmap(lambda k: model.init(k, shape, dtype))(keys)``: several seeds at once, each bitwise its own."""
    dense_model = serial(
        conv2d(2, 3, weight_init="glorot", use_bias=True, flatten=True),
        dense(3, "tanh", weight_init="pytorch_uniform", keep_prob=0.8),
        dropout(0.5),
        dense(2),
    )
    models = ((dense_model, (1, 4, 4)), (stack(rnn_layer(3, 2, "rnn")), (2,)))
    keys = jax.random.split(jax.random.key(7), 3)
    for model, shape in models:
        batched = jax.vmap(lambda k, model=model, shape=shape: model.init(k, shape, dtype))(keys)
        for i in range(len(keys)):
            assert_bitwise_equal(jax.tree.map(lambda leaf, i=i: leaf[i], batched), model.init(keys[i], shape, dtype))


# ---------------------------------------------------------------- summary


def _cells(table: str) -> list[list[str]]:
    return [
        [c[1:].rstrip() if i == 0 else c.strip() for i, c in enumerate(line.strip("|").split("|"))]
        for line in table.splitlines()
        if line.startswith("| ")
    ]


def _n_params(model, shape) -> int:
    return sum(x.size for x in jax.tree.leaves(model.init(jax.random.key(0), shape)))


def test_serial_model():
    model = serial(dense(13, "sigmoid"), dropout(0.8), dense(1))
    table = model.summary((13,))
    assert _cells(table) == [
        ["layer", "output shape", "params"],
        ["dense(13, sigmoid)", "(batch, 13)", "182"],
        ["dropout(0.8)", "(batch, 13)", "0"],
        ["dense(1, linear)", "(batch, 1)", "14"],
    ]
    assert table.splitlines()[0] == "input shape: (batch, 13)"
    assert table.splitlines()[-1] == "total: 196 parameters"
    assert _n_params(model, (13,)) == 196


def test_nested_serial_and_conv():
    conv = conv2d(4, 3, activation="tanh")
    model = serial(conv, flatten(), serial(dense(32, "tanh"), dense(10)))
    table = summary(model, (1, 8, 8))
    rows = _cells(table)[1:]
    assert [r[0] for r in rows] == [
        "conv2d(4, 3, tanh)",
        "flatten()",
        "serial (2 layers)",
        "  dense(32, tanh)",
        "  dense(10, linear)",
    ]
    n_conv = _n_params(conv, (1, 8, 8))
    assert n_conv >= 4 * 1 * 3 * 3  # the kernel, plus any bias
    assert rows[0][1:] == ["(batch, 4, 8, 8)", f"{n_conv:,}"]
    assert rows[1][1:] == ["(batch, 256)", "0"]
    assert rows[2][1:] == ["(batch, 10)", f"{256 * 32 + 32 + 32 * 10 + 10:,}"]
    assert rows[3][1:] == ["(batch, 32)", f"{256 * 32 + 32:,}"]
    total = _n_params(model, (1, 8, 8))
    assert total == n_conv + 256 * 32 + 32 + 32 * 10 + 10
    assert table.splitlines()[-1] == f"total: {total:,} parameters"


def test_a_single_layer_and_float64():
    assert _cells(summary(dense(3), (5,), jnp.float64))[1] == ["dense(3, linear)", "(batch, 3)", "18"]


def test_not_a_layer_and_a_bad_shape():
    with pytest.raises(TypeError, match="summary: expected a Layer"):
        summary(lambda x: x, (3,))
    with pytest.raises(ValueError, match="put flatten\\(\\) before it"):
        serial(dense(3)).summary((2, 2))


# ---------------------------------------------------------------- property tests (tests/strategies.py)


@functools.cache
def objective(model, loss):
    return lambda grad, params, x, y, key: loss(model.apply(params, x, key=key, train=True, grad=grad), y, grad=grad)


SERIAL = {
    "tanh-linear": (serial(dense(4, "tanh"), dense(2)), (4,)),
    "sigmoid-dropout-sigmoid": (serial(dense(5, "sigmoid"), dropout(0.8, mode="inverted"), dense(3, "sigmoid")), (4,)),
    "flatten-reshape-dense": (serial(flatten(), reshape((2, 3)), flatten(), dense(2, "leaky_relu")), (3, 2)),
}


OBJECTIVE_MODEL = serial(dense(4, "tanh", keep_prob=0.9), dense(3))


@PROPERTY
@given(st.data(), st.sampled_from((1, 8)))
def test_serial_models_and_training_objective(data, b):
    """Small serial models (params and input), and loss(model(params, x), y) as fit differentiates it."""
    cases = {}
    for name, (model, shape) in SERIAL.items():
        params = random_params(data, model.init(jax.random.key(0), shape, jnp.float64))
        cases[name] = (model_fn(model), (params, draw(data, (b, *shape)), jax.random.key(seed(data))), 2)
    params = random_params(data, OBJECTIVE_MODEL.init(jax.random.key(0), (2,), jnp.float64))
    x = draw(data, (b, 2))
    for loss, y in (
        (losses.mean_squared_error, draw(data, (b, 3))),
        (losses.softmax_cross_entropy, targets(data, (b, 3), "one_hot")),
    ):
        key = jax.random.key(seed(data))
        cases[f"{loss.name} objective"] = (objective(OBJECTIVE_MODEL, loss), (params, x, y, key), 2)
    assert_vjps_agree(cases, seed(data))


# ---------------------------------------------------------------- bad input: serial, reshape, the dropout layer

WRONG_SHAPES = {
    "serial wrong features": (
        lambda: TINY_MODEL.apply(TINY_MODEL.init(jax.random.key(0), (4,)), jnp.zeros((2, 5))),
        r"layer 0 \(dense\(5, tanh\)\): .*input has 5 features but W expects 4",
    ),
    "reshape size": (
        lambda: layers.reshape((2, 3)).apply({}, jnp.zeros((2, 5))),
        r"each example has \(5,\) = 5 values, cannot become \(2, 3\) = 6",
    ),
}


@pytest.mark.parametrize("case", sorted(WRONG_SHAPES))
def test_wrong_shapes_and_ranks(case):
    call, message = WRONG_SHAPES[case]
    with pytest.raises(ValueError, match=message):
        call()


HYPERPARAMETERS = {
    "dropout keep_prob 1.5": (lambda ck: dropout(1.5), r"dropout keep_prob must be in \(0, 1\], got 1.5"),
}


@pytest.mark.parametrize("case", sorted(HYPERPARAMETERS))
def test_non_positive_hyperparameters(tmp_path, case):
    """Refused when given, before anything is read or written: an existing checkpoint is left as it was."""
    assert_refused_before_writing(tmp_path, *HYPERPARAMETERS[case])


def test_unknown_dropout_mode_is_refused_when_the_layer_is_made():
    """The dropout layer's case; the dense and conv2d layers' are in their test files under the same name."""
    for make in (lambda: dropout(0.5, mode="gaussian"),):
        with pytest.raises(ValueError, match=r"dropout mode must be one of \('book', 'inverted'\), got 'gaussian'"):
            make()
