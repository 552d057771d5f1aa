"""fdl.recurrent.params: each cell's declared params are the ones its forward and backward use; rnn_layer draws
them with every fdl.init initialiser (names and functions) at the declared fans; the book's default; bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fdl.init import INITIALISERS
from fdl.recurrent import CELLS, IMPLS, ParamSpec, get_cell, rnn_layer, run
from fdl.recurrent import params as params_module
from fdl.recurrent.cell import shapes

F64 = jnp.float64
N_IN, HIDDEN, N_OUT = 3, 5, 4  # all different, so a swapped axis shows


def declared(cell):
    return get_cell(cell).param_specs(N_IN, HIDDEN, N_OUT)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_declared_params_are_what_forward_and_backward_use(cell, impl):
    """Params built from the declaration alone run; both gradient paths give every declared param a nonzero
    gradient of its declared shape; a declared param left out is missed."""
    specs = declared(cell)
    keys = jax.random.split(jax.random.key(0), len(specs))
    params = {p.name: jax.random.normal(k, p.shape, F64) for k, p in zip(keys, specs, strict=True)}
    x = jax.random.normal(jax.random.key(1), (2, 3, N_IN), F64)
    state = rnn_layer(HIDDEN, N_OUT, cell).zero_state(F64)
    c = get_cell(cell, impl)
    for grad in ("manual", "autodiff"):
        g = jax.grad(lambda p: jnp.sum(run(c, p, x, state, grad=grad)[0] ** 2))(params)  # noqa: B023
        assert {k: v.shape for k, v in g.items()} == shapes(specs)
        assert all(float(jnp.abs(v).max()) > 0 for v in g.values()), (grad, g)
    for p in specs:
        with pytest.raises(KeyError):
            run(c, {k: v for k, v in params.items() if k != p.name}, x, state)


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_declarations_name_kinds_and_fans(cell):
    specs = declared(cell)
    assert all(isinstance(p, ParamSpec) and p.kind in ("weight", "bias") for p in specs)
    assert [p.name for p in specs[-2:]] == ["W_v", "B_v"]
    weights = {p.name: p for p in specs if p.kind == "weight"}
    for p in specs:
        if p.kind == "weight":  # a matrix's fans are its rows and columns
            assert p.shape == (p.fan_in, p.fan_out)
        else:  # a bias has the fans of the weight it is added to (B_f: W_f, B_r: W_xr)
            w = weights.get("W_" + p.name[2:]) or weights["W_x" + p.name[2:]]
            assert p.shape == (1, p.fan_out) and (p.fan_in, p.fan_out) == (w.fan_in, w.fan_out)
    first = specs[0]  # the layer reads n_in off the first declared param's rows
    assert first.shape[0] - get_cell(cell).param_specs(0, HIDDEN, N_OUT)[0].shape[0] == N_IN


def recording(calls, scale=0.5):
    """A function initialiser that records the shapes it is called with."""

    def init(key, shape, dtype):
        calls.append(shape)
        return scale * jax.random.normal(key, shape, dtype)

    return init


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_function_initialiser_is_called_with_the_declared_shapes(cell):
    calls = []
    layer = rnn_layer(HIDDEN, N_OUT, cell, weight_init=recording(calls), bias_init=recording(calls))
    params = layer.init(jax.random.key(0), (N_IN,), F64)
    assert calls == [p.shape for p in declared(cell)]
    assert {k: v.shape for k, v in params.items()} == shapes(declared(cell))
    assert all(v.dtype == F64 for v in params.values())
    zeros = rnn_layer(HIDDEN, N_OUT, cell, weight_init=recording([])).init(jax.random.key(0), (N_IN,))
    assert all(not zeros[p.name].any() for p in declared(cell) if p.kind == "bias")  # as fdl.dense


@pytest.mark.parametrize("name", INITIALISERS)
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_every_named_initialiser_draws_at_the_declared_fans(cell, name, monkeypatch):
    """Each fdl.init name works in rnn_layer; fdl.init.initialise receives each param's declared shape and fans."""
    seen = []
    real = params_module.initialise

    def spy(init, key, shape, fan_in, fan_out, dtype, what):
        seen.append((init, shape, fan_in, fan_out))
        return real(init, key, shape, fan_in, fan_out, dtype, what)

    monkeypatch.setattr(params_module, "initialise", spy)
    layer = rnn_layer(HIDDEN, N_OUT, cell, weight_init=name)
    params = layer.init(jax.random.key(0), (N_IN,))
    assert seen == [(name, p.shape, p.fan_in, p.fan_out) for p in declared(cell)]
    y, _ = layer.apply(params, jnp.ones((2, 3, N_IN)), layer.zero_state())
    assert y.shape == (2, 3, N_OUT) and bool(jnp.all(jnp.isfinite(y)))
    assert (name == "zeros") == all(not v.any() for v in params.values())


def test_named_scales_per_matrix():
    """Glorot and PyTorch's uniform with each matrix's own fans (a large layer, so the sample moments are close)."""
    n_in, hidden, out = 96, 128, 64
    lstm = rnn_layer(hidden, out, "lstm", weight_init="glorot").init(jax.random.key(0), (n_in,))
    np.testing.assert_allclose(float(jnp.std(lstm["W_f"])), np.sqrt(2 / (n_in + 2 * hidden)), rtol=0.02)
    np.testing.assert_allclose(float(jnp.std(lstm["W_v"])), np.sqrt(2 / (hidden + out)), rtol=0.02)
    gru = rnn_layer(hidden, out, "gru", weight_init="book_glorot").init(jax.random.key(0), (n_in,))
    np.testing.assert_allclose(float(jnp.std(gru["W_xr"])), 2 / (n_in + hidden), rtol=0.02)
    np.testing.assert_allclose(float(jnp.std(gru["W_hr"])), 2 / (2 * hidden), rtol=0.02)
    rnn = rnn_layer(hidden, out, "rnn", weight_init="pytorch_uniform").init(jax.random.key(0), (n_in,))
    bound = 1 / np.sqrt(n_in + hidden)
    assert 0.99 * bound < float(jnp.abs(rnn["W_f"]).max()) <= bound
    assert float(jnp.abs(rnn["B_f"]).max()) <= bound


def test_bias_init_as_fdl_dense():
    book_zero = rnn_layer(6, 4, "gru", bias_init="zeros").init(jax.random.key(0), (3,))
    book = rnn_layer(6, 4, "gru").init(jax.random.key(0), (3,))
    for k, v in book_zero.items():
        if k.startswith("B"):
            assert not v.any()
        else:
            np.testing.assert_array_equal(v, book[k])
    glorot = rnn_layer(6, 4, "lstm", weight_init="glorot", bias_init="standard").init(jax.random.key(0), (3,))
    assert all(glorot[k].any() for k in glorot)


def test_book_default_is_the_layers_book_glorot_scale_and_book_is_an_alias():
    """The book's RNNLayer: every parameter N(0, s^2), s = 2 / (n_in + output_size), fdl.init's "book_glorot" of
    the layer's fans; weight_init="book" (the old name) and weight_scale=s draw the same values."""
    key, n_in, out = jax.random.key(4), 7, 3
    default = rnn_layer(5, out, "lstm").init(key, (n_in,))
    for kw in ({"weight_init": "book"}, {"weight_scale": 2 / (n_in + out)}):
        same = rnn_layer(5, out, "lstm", **kw)
        for k, v in same.init(key, (n_in,)).items():
            np.testing.assert_array_equal(v, default[k])


# ---------------------------------------------------------------- bad input


def test_unknown_initialiser_names_fail_at_construction_with_the_valid_names():
    with pytest.raises(ValueError, match="rnn_layer: unknown weight_init 'he'; choose one of") as e:
        rnn_layer(4, 3, "gru", weight_init="he")
    assert all(repr(n) in str(e.value) for n in INITIALISERS) and "None" in str(e.value)
    with pytest.raises(ValueError, match="rnn_layer: unknown bias_init 'one'; choose one of") as e:
        rnn_layer(4, 3, "lstm", weight_init="glorot", bias_init="one")
    assert all(repr(n) in str(e.value) for n in INITIALISERS)
    with pytest.raises(TypeError, match="weight_init must be an initialiser name"):
        rnn_layer(4, 3, weight_init=0.1)
    with pytest.raises(ValueError, match="weight_scale=0.1 is the book's rule"):
        rnn_layer(4, 3, weight_init="glorot", weight_scale=0.1)


def test_initialiser_returning_another_shape_names_the_param():
    layer = rnn_layer(4, 3, "rnn", weight_init=lambda key, shape, dtype: jnp.zeros((2, 2), dtype))
    with pytest.raises(ValueError, match=r"rnn\(hidden 4 -> 3\) W_f: the initialiser .* returned shape \(2, 2\)"):
        layer.init(jax.random.key(0), (5,))


def test_params_of_other_shapes_than_declared():
    layer = rnn_layer(4, 3, "lstm")
    params = layer.init(jax.random.key(0), (5,))
    with pytest.raises(ValueError, match=r"params of shapes .* do not match the cell's declaration"):
        layer.apply({**params, "W_v": params["W_v"][:, :2]}, jnp.ones((2, 3, 5)), layer.zero_state())
    with pytest.raises(ValueError, match=r"params must be a dict of the arrays \['B_c', "):
        layer.apply({"W": params["W_f"]}, jnp.ones((2, 3, 5)), layer.zero_state())
    gru = rnn_layer(4, 3, "gru")
    with pytest.raises(ValueError, match=r"params must be a dict of the arrays \['B_h', .*got keys \['B_f', "):
        gru.apply(rnn_layer(4, 3, "rnn").init(jax.random.key(0), (5,)), jnp.ones((2, 3, 5)), gru.zero_state())
