"""fdl.init: the named initialisers' scales, functions as initialisers, and the bias rule."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fdl.init import INITIALISERS, bias_initialiser, check_initialiser, init_scale, initialise


@pytest.mark.parametrize(
    "name, expected",
    [
        ("standard", 1.0),
        ("glorot", math.sqrt(2 / 150)),
        ("book_glorot", 2 / 150),
        ("pytorch_uniform", 1 / math.sqrt(300)),
        ("zeros", 0.0),
    ],
)
def test_init_scale_is_the_standard_deviation(name, expected):
    assert init_scale(name, 100, 50) == pytest.approx(expected)
    draws = initialise(name, jax.random.key(0), (200, 200), 100, 50)
    assert float(jnp.std(draws)) == pytest.approx(expected, rel=0.02, abs=1e-12)


def test_pytorch_uniform_bound():
    draws = initialise("pytorch_uniform", jax.random.key(1), (100, 100), 25, 7, jnp.float64)
    assert draws.dtype == jnp.float64
    assert 0.19 < float(jnp.max(jnp.abs(draws))) <= 0.2  # 1 / sqrt(25)


def test_function_initialiser_gets_key_shape_dtype():
    seen = {}

    def init(key, shape, dtype):
        seen.update(shape=shape, dtype=dtype)
        return jnp.full(shape, 3.0, dtype)

    out = initialise(init, jax.random.key(2), (2, 3), 2, 3, jnp.float64)
    np.testing.assert_array_equal(out, np.full((2, 3), 3.0))
    assert seen == {"shape": (2, 3), "dtype": jnp.float64}


def test_bias_rule():
    assert bias_initialiser("pytorch_uniform", None) == "pytorch_uniform"
    assert bias_initialiser(jax.nn.initializers.he_normal(), None) == "zeros"
    assert bias_initialiser("glorot", "zeros") == "zeros"


def test_bad_initialisers():
    with pytest.raises(ValueError, match="unknown weight_init 'he'; choose one of"):
        init_scale("he", 1, 1)
    with pytest.raises(ValueError, match="dense: unknown bias_init 'xavier'"):
        check_initialiser("xavier", "dense", "bias_init")
    with pytest.raises(TypeError, match="weight_init must be an initialiser name"):
        check_initialiser(None, "dense")
    for name in INITIALISERS:
        check_initialiser(name, "dense")
