"""fdl.recurrent's cells (rnn_cell.py, lstm_cell.py, gru_cell.py, cell.py, cells.py; book ch. 6): the readable node
backward against jax.vjp of the node, the fused form against the readable one (outputs and gradients), both against
jax.grad, gradient dtypes, the five-member interface, the book's equations by hand, erratum 2."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fdl.recurrent import gru_cell, lstm_cell, rnn_cell
from fdl.recurrent.cell import Cell, LSTMState, RNNState, shapes
from fdl.recurrent.cells import CELLS, IMPLS, get_cell
from fdl.recurrent.char_eval import gradient_norms
from fdl.recurrent.layers import rnn_layer, run
from fdl.recurrent.model import stack
from fdl.testing import random_like

F64 = jnp.float64
MODULES = {"rnn": rnn_cell, "lstm": lstm_cell, "gru": gru_cell}
TIGHT = {"rtol": 1e-12, "atol": 1e-12}


def _params(cell, n_in=3, hidden=5, out=4, dtype=F64, key=0):
    """O(1) weights (the book's scale is tiny, which would hide most of the backward), every one distinct."""
    layer = rnn_layer(hidden, out, cell)
    return jax.tree.map(lambda a: (3.0 * a).astype(dtype), layer.init(jax.random.key(key), (n_in,), F64)), layer


def _close(a, b, **tol):
    a_leaves, a_def = jax.tree.flatten(a)
    b_leaves, b_def = jax.tree.flatten(b)
    assert a_def == b_def, (a_def, b_def)
    for x, y in zip(a_leaves, b_leaves, strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape, (x.dtype, y.dtype, x.shape, y.shape)
        np.testing.assert_allclose(x, y, **(tol or TIGHT))


@pytest.mark.parametrize("cell", sorted(MODULES))
def test_node_backward_is_the_vjp_of_the_node(cell):
    """One step: the book's node backward, line for line, equals jax.vjp of the book's node forward."""
    mod = MODULES[cell]
    params, layer = _params(cell)
    x = jax.random.normal(jax.random.key(1), (2, 3), F64)
    state = random_like(jax.random.key(2), jax.tree.map(lambda z: jnp.broadcast_to(z, (2, 5)), layer.zero_state(F64)))
    y, new, cache = mod.node(params, x, state)
    _, vjp = jax.vjp(lambda p, x, s: mod.node(p, x, s)[:2], params, x, state)
    dy, dnew = random_like(jax.random.key(3), (y, new))
    dparams, dx, dstate = vjp((dy, dnew))
    got_dx, got_dstate, got_grads = mod.node_backward(params, cache, dy, dnew)
    _close(got_grads, dparams)
    _close(got_dx, dx)
    _close(got_dstate, dstate)


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("batch,T", [(1, 1), (3, 7)])
def test_fused_equals_node_and_both_equal_jax_grad(cell, batch, T):
    """Sequence level, float64: forward, and every gradient of the hand-written backward, of both forms."""
    node, fused = get_cell(cell, "node"), get_cell(cell, "fused")
    params, layer = _params(cell)
    xs = jax.random.normal(jax.random.key(4), (T, batch, 3), F64)
    state0 = random_like(
        jax.random.key(5), jax.tree.map(lambda z: jnp.broadcast_to(z, (batch, 5)), layer.zero_state(F64))
    )
    ys_n, last_n, res_n = node.forward(params, xs, state0)
    ys_f, last_f, res_f = fused.forward(params, xs, state0)
    _close((ys_f, last_f), (ys_n, last_n))
    dys, dlast = random_like(jax.random.key(6), (ys_n, last_n))
    by_node = node.backward(params, res_n, dys, dlast)
    by_fused = fused.backward(params, res_f, dys, dlast)
    _, vjp = jax.vjp(lambda p, x, s: node.forward(p, x, s)[:2], params, xs, state0)
    by_jax = vjp((dys, dlast))
    _close(by_fused, by_node)
    _close(by_node, by_jax)


def test_lstm_node_by_hand():
    """One LSTM step with one unit, from the book's equations with numbers (plain Python math)."""
    s = lambda a: 1.0 / (1.0 + math.exp(-a))  # noqa: E731
    w = {"f": (0.5, -1.0, 0.1), "i": (1.5, 0.5, -0.2), "c": (-0.7, 2.0, 0.3), "o": (0.9, 0.4, 0.0)}
    params = {"W_v": jnp.array([[2.0]], F64), "B_v": jnp.array([[0.5]], F64)}
    for g, (wx, wh, b) in w.items():
        params[f"W_{g}"], params[f"B_{g}"] = jnp.array([[wx], [wh]], F64), jnp.array([[b]], F64)
    x, h, c = 0.3, -0.6, 0.8
    pre = {g: x * wx + h * wh + b for g, (wx, wh, b) in w.items()}
    c_out = s(pre["f"]) * c + s(pre["i"]) * math.tanh(pre["c"])
    h_out = s(pre["o"]) * math.tanh(c_out)
    y, state, _ = lstm_cell.node(params, jnp.array([[x]], F64), LSTMState(jnp.array([[h]], F64), jnp.array([[c]], F64)))
    np.testing.assert_allclose([state.C[0, 0], state.H[0, 0], y[0, 0]], [c_out, h_out, 2.0 * h_out + 0.5], rtol=1e-14)


def test_gru_update_gate_has_its_own_weights():
    """Erratum 2: u = s(x W_xu + H W_hu + B_u), not the reset gate's inputs; with r = u = 1/2 by hand."""
    params = {k: jnp.zeros(v, F64) for k, v in shapes(gru_cell.param_specs(1, 1, 1)).items()}
    params.update(W_xh=jnp.array([[1.0]], F64), W_v=jnp.ones((1, 1), F64), B_v=jnp.zeros((1, 1), F64))
    x, h = jnp.array([[0.4]], F64), RNNState(jnp.array([[0.2]], F64))
    _, new, _ = gru_cell.node(params, x, h)
    h_bar = math.tanh(0.4)
    np.testing.assert_allclose(new.H[0, 0], 0.5 * 0.2 + 0.5 * h_bar, rtol=1e-14)
    params["B_u"] = jnp.array([[20.0]], F64)  # u -> 1: the state passes through unchanged
    np.testing.assert_allclose(gru_cell.node(params, x, h)[1].H[0, 0], 0.2, rtol=1e-8)
    params["B_r"] = jnp.array([[-20.0]], F64)  # r alone does not move u
    np.testing.assert_allclose(gru_cell.node(params, x, h)[1].H[0, 0], 0.2, rtol=1e-8)


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("impl", IMPLS)
def test_gradients_come_back_in_their_primals_dtypes(cell, impl):
    """Issue 13 item 4: float32 params and start state, float64 inputs: the hand-written backward returns
    each gradient in its primal's dtype, as jax.grad does, with the same values."""
    params, layer = _params(cell, dtype=jnp.float32)
    x = jax.random.normal(jax.random.key(7), (2, 4, 3), F64)
    state = jax.tree.map(lambda z: z + 0.25, layer.zero_state(jnp.float32))
    c = get_cell(cell, impl)
    out = {}
    for grad in ("manual", "autodiff"):
        f = lambda p, x, s: run(c, p, x, s, grad=grad)  # noqa: E731, B023
        (y, last), vjp = jax.vjp(f, params, x, state)
        out[grad] = vjp(random_like(jax.random.key(8), (y, last)))
    dparams, dx, dstate = out["manual"]
    assert {v.dtype for v in dparams.values()} == {jnp.dtype(jnp.float32)}
    assert dx.dtype == F64 and all(s.dtype == jnp.float32 for s in dstate)
    _close(out["manual"], out["autodiff"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_layer_impls_share_params_and_numbers(cell):
    """``rnn_layer(..., impl="node")`` and the default fused layer: same param names, same outputs and grads."""
    fused, node = rnn_layer(5, 4, cell), rnn_layer(5, 4, cell, impl="node")
    params = fused.init(jax.random.key(9), (3,), F64)
    assert jax.tree.structure(params) == jax.tree.structure(node.init(jax.random.key(9), (3,), F64))
    assert fused.name == f"{cell}(hidden 5 -> 4)" and node.name == f"{cell}[node](hidden 5 -> 4)"
    x = jax.random.normal(jax.random.key(10), (2, 6, 3), F64)

    def value_and_grad(layer):
        return jax.value_and_grad(lambda p: jnp.sum(layer.apply(p, x, layer.zero_state(F64))[0] ** 2))(params)

    _close(value_and_grad(node), value_and_grad(fused))


def test_cell_interface_has_five_documented_members():
    assert Cell._fields == ("name", "param_specs", "state", "forward", "backward")
    for name, forms in CELLS.items():
        assert set(forms) == set(IMPLS)
        assert forms["node"].name == name and forms["fused"].name == f"{name}_fused"
        assert forms["node"].param_specs is forms["fused"].param_specs is MODULES[name].param_specs
        assert forms["node"].state is forms["fused"].state is (LSTMState if name == "lstm" else RNNState)


def test_unknown_cell_or_impl():
    with pytest.raises(ValueError, match=r"unknown cell 'transformer'; choose one of \['gru', 'lstm', 'rnn'\]"):
        get_cell("transformer")
    with pytest.raises(ValueError, match=r"unknown cell implementation impl='fast'; choose one of \('fused', 'node'\)"):
        rnn_layer(4, 3, "lstm", impl="fast")


# ---------------------------------------------------------------- the book's equations by hand, erratum 2


def test_rnn_node_by_hand():
    """One vanilla RNN step computed from the book's equations with numbers."""
    params = {
        "W_f": jnp.array([[1.0], [2.0]], F64),
        "B_f": jnp.array([[0.5]], F64),
        "W_v": jnp.array([[3.0]], F64),
        "B_v": jnp.array([[-1.0]], F64),
    }
    y, last = run(get_cell("rnn"), params, jnp.array([[[0.25]]], F64), RNNState(jnp.array([[-0.5]], F64)))
    h = np.tanh(0.25 * 1.0 + -0.5 * 2.0 + 0.5)
    np.testing.assert_allclose(last.H, [[h]])
    np.testing.assert_allclose(y, [[[3.0 * h - 1.0]]])


def test_gru_every_weight_learns():
    """Erratum 2: the book's GRU gives every weight but W_v/B_v a zero gradient; fdl's does not."""
    vocab = 6
    model = stack(rnn_layer(5, vocab, "gru"))
    params = model.init(jax.random.key(3), (vocab,), F64)
    ids = jax.random.randint(jax.random.key(4), (2, 9), 0, vocab)
    states = [RNNState(0.5 * jnp.ones((1, 5), F64))]
    norms = gradient_norms(model, params, ids[:, :-1], ids[:, 1:], states, vocab)[0]
    assert set(norms) == set(shapes(get_cell("gru").param_specs(vocab, 5, vocab)))
    assert all(v > 0 for v in norms.values()), norms
