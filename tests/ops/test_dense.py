"""fdl.ops.dense: weight_multiply and bias_add against jax.grad and finite differences, property tests, bad shapes."""

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fdl import ops
from fdl.ops.reshape import unflatten
from fdl.testing import check_op
from tests.helpers import normal
from tests.strategies import PROPERTY, assert_vjps_agree, call, draw, seed


@pytest.mark.parametrize("n,i,o", [(1, 1, 1), (1, 13, 1), (7, 3, 5), (60, 89, 10)])
def test_weight_multiply(n, i, o):
    check_op(ops.weight_multiply, normal(3, (n, i)), normal(4, (i, o)))


@pytest.mark.parametrize("n,f", [(1, 1), (9, 4), (60, 89)])
def test_bias_add(n, f):
    check_op(ops.bias_add, normal(5, (n, f)), normal(6, (1, f)))


# flatten and unflatten (fdl.ops.reshape) share this bundle: one compilation per shape for the four ops


@PROPERTY
@given(st.data(), st.sampled_from(((1, 1, 1, 1, (1,)), (8, 9, 5, 2, (3, 1, 2)))))
def test_dense_and_reshape_ops(data, config):
    """weight_multiply, bias_add, flatten (of a 4-D batch), unflatten; batch 1, non-square, larger."""
    b, n_in, n_out, c, shape = config
    image = (b, c, 2, 3)
    assert_vjps_agree(
        {
            "weight_multiply": (call(ops.weight_multiply), (draw(data, (b, n_in)), draw(data, (n_in, n_out))), 2),
            "bias_add": (call(ops.bias_add), (draw(data, (b, n_out)), draw(data, (1, n_out))), 2),
            "flatten": (call(ops.flatten), (draw(data, image),), 1),
            "unflatten": (call(unflatten, shape=shape), (draw(data, (b, int(np.prod(shape)))),), 1),
        },
        seed(data),
    )


# ---------------------------------------------------------------- bad shapes


def test_shape_errors_name_the_op_and_shapes():
    with pytest.raises(ValueError, match=r"weight_multiply: input has 4 features but W expects 3"):
        ops.weight_multiply(jnp.ones((2, 4)), jnp.ones((3, 5)))
    with pytest.raises(ValueError, match=r"weight_multiply input: expected a 2-D array"):
        ops.weight_multiply(jnp.ones((2, 4, 1)), jnp.ones((4, 5)))
    with pytest.raises(ValueError, match=r"bias_add: B must have shape \(1, 5\)"):
        ops.bias_add(jnp.ones((2, 5)), jnp.ones((5,)))


WRONG_SHAPES = {
    "weight_multiply rank": (
        lambda: ops.weight_multiply(jnp.zeros((2, 3, 4)), jnp.zeros((4, 2))),
        r"weight_multiply input: expected a 2-D array \(batch, features\), got shape \(2, 3, 4\)",
    ),
    "weight_multiply features": (
        lambda: ops.weight_multiply(jnp.zeros((2, 3)), jnp.zeros((4, 2))),
        r"input has 3 features but W expects 4 \(input \(2, 3\), W \(4, 2\)\)",
    ),
    "bias_add": (
        lambda: ops.bias_add(jnp.zeros((2, 3)), jnp.zeros((3,))),
        r"bias_add: B must have shape \(1, 3\) for input \(2, 3\), got \(3,\)",
    ),
}


@pytest.mark.parametrize("case", sorted(WRONG_SHAPES))
def test_wrong_shapes_and_ranks(case):
    call, message = WRONG_SHAPES[case]
    with pytest.raises(ValueError, match=message):
        call()
