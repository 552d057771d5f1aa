"""fdl.recurrent.layers: hand-written BPTT against jax.grad, scan against a Python loop over the book's node,
state carrying, shapes and initial scale, property tests, bad input."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fdl.recurrent import CELLS, LSTMState, RNNState, get_cell, gru_cell, lstm_cell, rnn_cell, rnn_layer, run
from fdl.recurrent.cells import IMPLS
from fdl.recurrent.model import stack
from fdl.testing import check_vjp
from tests.strategies import PROPERTY, assert_vjps_agree, draw, random_params, seed

F64 = jnp.float64
NODES = {"rnn": rnn_cell.node, "lstm": lstm_cell.node, "gru": gru_cell.node}


def _setup(cell, batch, T, n_in=3, hidden=5, out=4, key=0, scale=3.0):
    """A layer with O(1) weights (the book's scale is tiny), input and a random start state, in float64."""
    layer = rnn_layer(hidden, out, cell)
    k1, k2, k3 = jax.random.split(jax.random.key(key), 3)
    params = jax.tree.map(lambda a: scale * a, layer.init(k1, (n_in,), F64))
    x = jax.random.normal(k2, (batch, T, n_in), F64)
    state = jax.tree.map(lambda z: 0.5 * jax.random.normal(k3, z.shape, F64), layer.zero_state(F64))
    return layer, params, x, state


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("batch,T", [(1, 1), (1, 2), (3, 2), (2, 25)])
def test_bptt_matches_autodiff(cell, batch, T, impl):
    """params, inputs and start state: forward equal, VJPs equal; finite differences for the short ones."""
    layer, params, x, state = _setup(cell, batch, T)
    c = get_cell(cell, impl)
    check_vjp(
        lambda p, x, s: run(c, p, x, s, grad="manual"),
        lambda p, x, s: run(c, p, x, s, grad="autodiff"),
        (params, x, state),
        numerical=T <= 2,
    )


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_bptt_batch_sized_start_state(cell, impl):
    layer, params, x, state = _setup(cell, 3, 4)
    state = jax.tree.map(lambda s: jnp.concatenate([s, 2 * s, -s]), state)
    c = get_cell(cell, impl)
    check_vjp(
        lambda p, s: run(c, p, x, s, grad="manual"),
        lambda p, s: run(c, p, x, s, grad="autodiff"),
        (params, state),
        numerical=False,
    )


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_scan_equals_python_loop_over_the_book_node(cell, impl):
    layer, params, x, state = _setup(cell, 2, 6)
    y, last = run(get_cell(cell, impl), params, x, state)
    s = jax.tree.map(lambda a: jnp.broadcast_to(a, (2, a.shape[1])), state)
    ys = []
    for t in range(x.shape[1]):
        y_t, s, _ = NODES[cell](params, x[:, t], s)
        ys.append(y_t)
    np.testing.assert_allclose(y, jnp.stack(ys, axis=1), rtol=1e-12, atol=1e-12)
    for a, b in zip(last, s, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_state_is_batch_mean_without_gradient():
    layer, params, x, state = _setup("lstm", 4, 3)
    y, new = layer.apply(params, x, state)
    _, last = run(layer.cell, params, x, state)
    assert isinstance(new, LSTMState) and new.H.shape == (1, 5) and new.C.shape == (1, 5)
    np.testing.assert_allclose(new.H, last.H.mean(0, keepdims=True))
    np.testing.assert_allclose(new.C, last.C.mean(0, keepdims=True))
    # no gradient flows from the next batch's loss back into this batch's params through the state
    g = jax.grad(lambda p: layer.apply(params, x, layer.apply(p, x, state)[1])[0].sum())(params)
    assert all(float(jnp.abs(v).max()) == 0.0 for v in g.values())


def test_zero_state_and_shapes():
    layer = rnn_layer(8, 3, "gru")
    zero = layer.zero_state()
    assert isinstance(zero, RNNState) and zero.H.shape == (1, 8) and not zero.H.any()
    params = layer.init(jax.random.key(0), (5,))
    assert params["W_xr"].shape == (5, 8) and params["W_hh"].shape == (8, 8) and params["W_v"].shape == (8, 3)
    y, s = layer.apply(params, jnp.ones((2, 4, 5)), layer.zero_state())
    assert y.shape == (2, 4, 3) and s.H.shape == (1, 8)
    lstm = rnn_layer(8, 3, "lstm").init(jax.random.key(0), (5,))
    assert sorted(lstm) == ["B_c", "B_f", "B_i", "B_o", "B_v", "W_c", "W_f", "W_i", "W_o", "W_v"]
    assert lstm["W_f"].shape == (13, 8) and lstm["B_f"].shape == (1, 8)


def test_book_initial_scale():
    params = rnn_layer(256, 65, "lstm").init(jax.random.key(0), (65,))
    np.testing.assert_allclose(float(jnp.std(params["W_f"])), 2 / (65 + 65), rtol=0.02)
    params = rnn_layer(256, 65, "lstm", weight_scale=0.01).init(jax.random.key(0), (128,))
    np.testing.assert_allclose(float(jnp.std(params["W_c"])), 0.01, rtol=0.02)


# ---------------------------------------------------------------- property tests (tests/strategies.py)


@functools.cache
def bptt(cell_name):
    cell = get_cell(cell_name)
    return lambda grad, params, x, state: run(cell, params, x, state, grad=grad)


@PROPERTY
@given(st.data(), st.sampled_from(((1, 1, 1, 1, 1, False), (3, 4, 3, 2, 4, True))))
def test_recurrent_layers(data, shape):
    """RNN, LSTM and GRU over a sequence: params, inputs and the start state ((1, hidden) or (batch, hidden))."""
    b, T, n_in, hidden, out, full_state = shape
    cases = {}
    for cell in ("rnn", "lstm", "gru"):
        layer = rnn_layer(hidden, out, cell)
        params = random_params(data, layer.init(jax.random.key(0), (n_in,), jnp.float64))
        state = jax.tree.map(lambda z: draw(data, (b if full_state else 1, hidden), 1.0), layer.zero_state())
        cases[cell] = (bptt(cell), (params, draw(data, (b, T, n_in), 2.0), state), 3)
    assert_vjps_agree(cases, seed(data))


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("size", [0, -3, 2.5, True])
def test_bad_sizes(size):
    with pytest.raises(ValueError, match="hidden_size"):
        rnn_layer(size, 4)
    with pytest.raises(ValueError, match="output_size"):
        rnn_layer(4, size)


def test_bad_input():
    layer = rnn_layer(4, 3, "rnn")
    params = layer.init(jax.random.key(0), (5,))
    with pytest.raises(ValueError, match="unknown cell"):
        rnn_layer(4, 3, "transformer")
    with pytest.raises(ValueError, match="3-D"):
        layer.apply(params, jnp.ones((2, 5)), layer.zero_state())
    with pytest.raises(ValueError, match="expected 5 input features"):
        layer.apply(params, jnp.ones((2, 3, 6)), layer.zero_state())
    with pytest.raises(ValueError, match="non-empty"):
        layer.apply(params, jnp.ones((2, 0, 5)), layer.zero_state())
    with pytest.raises(ValueError, match="state.H"):
        layer.apply(params, jnp.ones((2, 3, 5)), RNNState(jnp.zeros((3, 4))))
    with pytest.raises(TypeError, match="RNNState"):
        layer.apply(params, jnp.ones((2, 3, 5)), LSTMState(jnp.zeros((1, 4)), jnp.zeros((1, 4))))
    with pytest.raises(ValueError, match="grad must be"):
        layer.apply(params, jnp.ones((2, 3, 5)), layer.zero_state(), grad="numeric")
    with pytest.raises(TypeError, match="layer 1"):
        model = stack(rnn_layer(4, 3, "rnn"), rnn_layer(4, 2, "lstm"))
        p = model.init(jax.random.key(0), (5,))
        model.apply(p, jnp.ones((2, 3, 5)), [model.zero_state()[0], RNNState(jnp.zeros((1, 4)))])


def test_wrong_shapes_conv_and_recurrent():
    """The recurrent layer's cases of the bad-input catalogue's test; conv2d's and the conv2d layer's are in their
    test files under the same name."""
    layer = rnn_layer(4, 3, "lstm")
    params = layer.init(jax.random.key(0), (5,))
    with pytest.raises(ValueError, match=r"expected a 3-D array \(batch, sequence_length, features\)"):
        layer.apply(params, jnp.zeros((2, 5)), layer.zero_state())
    with pytest.raises(ValueError, match=r"expected 5 input features \(from the params\), got x of shape \(2, 3, 6\)"):
        layer.apply(params, jnp.zeros((2, 3, 6)), layer.zero_state())
    with pytest.raises(TypeError, match="state must be a LSTMState, got RNNState"):
        layer.apply(params, jnp.zeros((2, 3, 5)), rnn_layer(4, 3, "rnn").zero_state())


def test_integer_input_to_differentiable_code():
    """The recurrent layer's case of the bad-input catalogue's test (the dense layer's, the activations' and
    conv2d's are in their test files under the same name)."""
    layer = rnn_layer(4, 3, "gru")
    with pytest.raises(TypeError, match="expected floating-point inputs .*one-hot characters.*got int"):
        layer.apply(layer.init(jax.random.key(0), (5,)), jnp.zeros((2, 3, 5), jnp.int32), layer.zero_state())


def test_empty_text():
    """The recurrent layer's case (an empty batch); the text helpers' are in tests/data/test_text.py under the
    same name."""
    layer = rnn_layer(4, 3, "rnn")
    with pytest.raises(ValueError, match=r"expected a non-empty batch and sequence, got x of shape \(0, 2, 5\)"):
        layer.apply(layer.init(jax.random.key(0), (5,)), jnp.zeros((0, 2, 5)), layer.zero_state())


def test_non_positive_hyperparameters_conv_recurrent_text():
    """The recurrent layer's cases; the conv2d layer's and the text helpers' are in their test files under the same
    name."""
    for call, message in [
        (lambda: rnn_layer(0, 3), "hidden_size must be a positive integer, got 0"),
        (lambda: rnn_layer(3, -1), "output_size must be a positive integer, got -1"),
    ]:
        with pytest.raises(ValueError, match=message):
            call()


def test_unknown_names_conv_and_recurrent():
    """The recurrent layer's cases; the conv2d layer's are in tests/layers/test_conv.py under the same name."""
    for call, message in [
        (lambda: rnn_layer(4, 3, "transformer"), r"unknown cell 'transformer'; choose one of \['gru', "),
        (lambda: rnn_layer(4, 3, weight_init="he"), "unknown weight_init 'he'; choose one of"),
    ]:
        with pytest.raises(ValueError, match=message):
            call()
