"""fdl.ops.dropout: the op (the mask takes no gradient), the masks of the book's and the inverted mode, property
tests, bad arguments."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fdl import ops
from fdl.testing import check_op
from tests.helpers import normal
from tests.strategies import PROPERTY, assert_vjps_agree, call, draw, seed


def test_dropout_mask_takes_no_gradient():
    x = normal(8, (6, 4))
    mask = ops.dropout_mask(jax.random.key(1), x.shape, 0.7, dtype=x.dtype)
    check_op(ops.dropout, x, mask, wrt=[0])


def test_dropout_modes():
    shape = (2000, 50)
    key = jax.random.key(3)
    book = ops.dropout_mask(key, shape, 0.8)
    assert set(np.unique(book)) <= {0.0, 1.0} and abs(float(book.mean()) - 0.8) < 0.01
    inverted = ops.dropout_mask(key, shape, 0.8, mode="inverted")
    np.testing.assert_allclose(inverted, book / 0.8, rtol=1e-6)
    assert float(ops.dropout_mask(None, shape, 0.8, train=False)) == pytest.approx(0.8)
    assert float(ops.dropout_mask(None, shape, 0.8, mode="inverted", train=False)) == 1.0


@PROPERTY
@given(st.data(), st.sampled_from(((1, 1), (8, 9))))
def test_dropout_op(data, shape):
    """dropout w.r.t. x, with a training mask (book or inverted) and with the inference scalar.

    Split from test_elementwise_ops (tests/ops/test_activations.py), whose bundle it was part of.
    """
    any_x = draw(data, shape)
    keep = data.draw(st.sampled_from((0.5, 0.8)))
    mask = ops.dropout_mask(
        jax.random.key(seed(data)),
        shape,
        keep,
        mode=data.draw(st.sampled_from(("book", "inverted"))),
        dtype=jnp.float64,
    )
    assert_vjps_agree(
        {
            "dropout (training mask)": (call(ops.dropout), (any_x, mask), 1),
            "dropout (inference scalar)": (call(ops.dropout), (any_x, np.float64(keep)), 1),
        },
        seed(data),
    )


# ---------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(keep_prob=0.0), "keep_prob"),
        (dict(keep_prob=1.5), "keep_prob"),
        (dict(keep_prob=0.5, mode="alpha"), "mode"),
        (dict(keep_prob=0.5, key=None), "key"),
    ],
)
def test_dropout_bad_arguments(kwargs, match):
    kwargs.setdefault("key", jax.random.key(0))
    with pytest.raises(ValueError, match=match):
        ops.dropout_mask(shape=(2, 2), **kwargs)


UNKNOWN_NAMES = {
    "dropout mode": (
        lambda: ops.dropout_mask(jax.random.key(0), (2,), 0.5, mode="gaussian"),
        r"dropout mode must be one of \('book', 'inverted'\), got 'gaussian'",
    ),
}


@pytest.mark.parametrize("case", sorted(UNKNOWN_NAMES))
def test_unknown_names(case):
    call, message = UNKNOWN_NAMES[case]
    with pytest.raises(ValueError, match=message):
        call()
