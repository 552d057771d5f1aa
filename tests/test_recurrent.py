"""Recurrent layers: hand-written BPTT against jax.grad, scan against a Python loop over the book's node,
state carrying, stacking, the GRU erratum, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fdl.recurrent import CELLS, LSTMState, RNNState, get_cell, gru_cell, lstm_cell, rnn_cell, rnn_layer, run
from fdl.recurrent.cells import IMPLS
from fdl.recurrent.model import char_loss, char_loss_fn, gradient_norms, stack
from fdl.testing import check_vjp
from fdl.train import TrainState, make_train_step

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
    check_vjp(lambda p, x, s: run(c, p, x, s, grad="manual"), lambda p, x, s: run(c, p, x, s, grad="autodiff"),
              (params, x, state), numerical=T <= 2)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_bptt_batch_sized_start_state(cell, impl):
    layer, params, x, state = _setup(cell, 3, 4)
    state = jax.tree.map(lambda s: jnp.concatenate([s, 2 * s, -s]), state)
    c = get_cell(cell, impl)
    check_vjp(lambda p, s: run(c, p, x, s, grad="manual"), lambda p, s: run(c, p, x, s, grad="autodiff"),
              (params, state), numerical=False)


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


def test_rnn_node_by_hand():
    """One vanilla RNN step computed from the book's equations with numbers."""
    params = {"W_f": jnp.array([[1.0], [2.0]], F64), "B_f": jnp.array([[0.5]], F64),
              "W_v": jnp.array([[3.0]], F64), "B_v": jnp.array([[-1.0]], F64)}
    y, last = run(get_cell("rnn"), params, jnp.array([[[0.25]]], F64), RNNState(jnp.array([[-0.5]], F64)))
    h = np.tanh(0.25 * 1.0 + -0.5 * 2.0 + 0.5)
    np.testing.assert_allclose(last.H, [[h]])
    np.testing.assert_allclose(y, [[[3.0 * h - 1.0]]])


@pytest.mark.parametrize("cells", [("rnn", "lstm"), ("lstm", "lstm"), ("gru", "lstm")])
def test_stacked_model_gradients(cells):
    vocab, T, batch = 6, 7, 3
    model = stack(rnn_layer(5, 4, cells[0]), rnn_layer(5, vocab, cells[1]))
    params = jax.tree.map(lambda a: 3.0 * a, model.init(jax.random.key(1), (vocab,), F64))
    ids = jax.random.randint(jax.random.key(2), (batch, T + 1), 0, vocab)
    states = model.zero_state(F64)

    def loss(grad):
        return lambda p: char_loss(model, p, ids[:, :-1], ids[:, 1:], states, vocab, grad=grad, dtype=F64)[0]

    check_vjp(loss("manual"), loss("autodiff"), (params,))


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


def test_gru_every_weight_learns():
    """Erratum 2: the book's GRU gives every weight but W_v/B_v a zero gradient; fdl's does not."""
    vocab = 6
    model = stack(rnn_layer(5, vocab, "gru"))
    params = model.init(jax.random.key(3), (vocab,), F64)
    ids = jax.random.randint(jax.random.key(4), (2, 9), 0, vocab)
    states = [RNNState(0.5 * jnp.ones((1, 5), F64))]
    norms = gradient_norms(model, params, ids[:, :-1], ids[:, 1:], states, vocab)[0]
    assert set(norms) == set(get_cell("gru").shapes(vocab, 5)) | {"W_v", "B_v"}
    assert all(v > 0 for v in norms.values()), norms


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


def test_train_step_manual_equals_autodiff_and_book_sum():
    vocab = 5
    model = stack(rnn_layer(4, 3, "gru"), rnn_layer(4, vocab, "lstm"))
    params = jax.tree.map(lambda a: 3.0 * a, model.init(jax.random.key(5), (vocab,), F64))
    ids = jax.random.randint(jax.random.key(6), (2, 6), 0, vocab)
    out = {}
    for grad in ("manual", "autodiff"):
        step = jax.jit(make_train_step(char_loss_fn(model, vocab, grad=grad, dtype=F64), optax.sgd(0.1)))
        state = TrainState(params, optax.sgd(0.1).init(params), model.zero_state(F64))
        out[grad] = step(state, (ids[:, :-1], ids[:, 1:]), jax.random.key(0))
    for a, b in zip(jax.tree.leaves(out["manual"]), jax.tree.leaves(out["autodiff"]), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)

    def g(reduction):
        return jax.grad(lambda p: char_loss(model, p, ids[:, :-1], ids[:, 1:], model.zero_state(F64), vocab,
                                            reduction=reduction, dtype=F64)[0])(params)
    for a, b in zip(jax.tree.leaves(g("sum")), jax.tree.leaves(g("mean")), strict=True):
        np.testing.assert_allclose(a, 2 * 5 * b, rtol=1e-10, atol=1e-14)
