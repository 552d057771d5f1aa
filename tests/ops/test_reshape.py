"""fdl.ops.reshape: flatten against jax.grad and finite differences, and bad shapes.

flatten's and unflatten's property test shares one compiled bundle with the dense ops: test_dense_and_reshape_ops
in tests/ops/test_dense.py.
"""

import jax.numpy as jnp
import numpy as np
import pytest

from fdl import ops
from fdl.testing import check_op
from tests.helpers import normal


@pytest.mark.parametrize("shape", [(1, 3), (2, 3, 4), (5, 1, 6, 6)])
def test_flatten(shape):
    check_op(ops.flatten, normal(7, shape))
    assert ops.flatten(jnp.zeros(shape)).shape == (shape[0], int(np.prod(shape[1:])))


WRONG_SHAPES = {
    "flatten scalar": (lambda: ops.flatten(jnp.zeros(())), r"flatten: expected an array with a batch axis, got shape"),
}


@pytest.mark.parametrize("case", sorted(WRONG_SHAPES))
def test_wrong_shapes_and_ranks(case):
    call, message = WRONG_SHAPES[case]
    with pytest.raises(ValueError, match=message):
        call()
