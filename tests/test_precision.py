"""fdl.precision: the float32 matmul precision policy, and the harness running under "highest"."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fdl import precision
from fdl.testing import check_vjp


@pytest.fixture(autouse=True)
def restore():
    before = precision.get_matmul_precision()
    yield
    precision.set_matmul_precision(before)


def test_the_default_is_the_backends():
    assert precision.get_matmul_precision() is None  # fdl never changes it on import


def test_context_manager_sets_and_restores():
    with precision.matmul_precision("highest"):
        assert precision.get_matmul_precision() == "highest"
        assert jax.config.jax_default_matmul_precision == "highest"
    assert precision.get_matmul_precision() is None


def test_set_for_the_whole_program_and_back():
    precision.set_matmul_precision("highest")
    assert jax.config.jax_default_matmul_precision == "highest"
    precision.set_matmul_precision("default")
    assert precision.get_matmul_precision() == "default"
    precision.set_matmul_precision(None)
    assert precision.get_matmul_precision() is None


@pytest.mark.parametrize("bad", ["fp32", "HIGHEST", "tf32"])
def test_unknown_values_are_refused_with_the_list(bad):
    with pytest.raises(ValueError, match=r"matmul precision must be one of .*'highest'.*got"):
        precision.set_matmul_precision(bad)
    with pytest.raises(ValueError, match="matmul precision must be one of"):
        with precision.matmul_precision(bad):
            pass


def test_jitted_functions_are_retraced_under_another_precision():
    seen = []

    @jax.jit
    def f(a, b):
        seen.append(jax.config.jax_default_matmul_precision)
        return a @ b

    a = jnp.ones((2, 2), jnp.float32)
    f(a, a)
    with precision.matmul_precision("highest"):
        f(a, a)
    assert seen == [None, "highest"]


def test_float32_products_under_highest_are_float32_accurate():
    # On CPUs the default already is full float32; on Ampere+ GPUs "default" would be TF32 (~1e-3 relative).
    a = jax.random.normal(jax.random.key(0), (64, 64), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (64, 64), jnp.float32)
    exact = np.asarray(a, np.float64) @ np.asarray(b, np.float64)
    with precision.matmul_precision("highest"):
        got = np.asarray(jax.jit(jnp.matmul)(a, b))
    np.testing.assert_allclose(got, exact, rtol=1e-4, atol=1e-4)


def test_the_harness_runs_its_checks_under_highest():
    seen = []

    def f(x):
        seen.append(jax.config.jax_default_matmul_precision)
        return jnp.sum(x @ x.T)

    check_vjp(f, f, [jnp.ones((2, 3))], numerical=False)
    assert seen and set(seen) == {"highest"}
    assert precision.get_matmul_precision() is None
