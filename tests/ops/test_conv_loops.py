"""fdl.ops.conv_loops: the chapter's loop-based convolutions: the book's published checks, the harness, the fast
versions, property tests.

conv1d_loops's property test shares one compiled bundle with conv2d layers: test_conv_1d_and_conv_layers in
tests/layers/test_conv.py.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jax import lax

from fdl.ops.conv import conv2d, conv2d_im2col
from fdl.ops.conv_loops import conv1d_loops, conv2d_loops
from fdl.testing import check_op, check_vjp
from tests.helpers import conv2d_reference
from tests.strategies import PROPERTY, assert_vjps_agree, call, draw, seed


def sum_loss_grads(x, w):
    return jax.grad(lambda x, w: jnp.sum(conv1d_loops(x, w)), (0, 1))(x, w)


def test_book_1d_check():
    out = conv1d_loops(jnp.array([1.0, 2, 3, 4, 5]), jnp.ones(3))
    np.testing.assert_array_equal(out, [3, 6, 9, 12, 9])
    dx, dw = sum_loss_grads(jnp.array([1.0, 2, 3, 4, 5]), jnp.ones(3))
    np.testing.assert_array_equal(dx, [2, 3, 3, 3, 2])
    np.testing.assert_array_equal(dw, [10, 15, 14])


def test_book_1d_batch_check():
    x = jnp.stack([jnp.arange(0.0, 7.0), jnp.arange(1.0, 8.0)])
    _, dw = sum_loss_grads(x, jnp.ones(3))
    np.testing.assert_array_equal(dw, [36, 49, 48])


def reference_1d(x, w):
    """1-D lax convolution with one input and one output channel; batch (or a single row) kept."""
    rows = x.reshape(-1, 1, x.shape[-1])
    k = w.shape[0]
    out = lax.conv_general_dilated(rows, w.reshape(1, 1, k), (1,), [(k // 2, k // 2)])
    return out.reshape(x.shape)


@pytest.mark.parametrize("x_shape, k", [((5,), 3), ((1, 6), 1), ((3, 7), 5), ((2, 4), 3)])
def test_conv_1d_against_lax_reference(x_shape, k):
    kx, kw = jax.random.split(jax.random.key(3))
    x, w = jax.random.normal(kx, x_shape, jnp.float64), jax.random.normal(kw, (k,), jnp.float64)
    check_vjp(lambda x, w: conv1d_loops(x, w), reference_1d, (x, w))


# Small on purpose: every kernel entry and channel pair is a separate Python-level term.
@pytest.mark.parametrize(
    "case", [(1, 1, 2, 4, 4, 3), (2, 2, 3, 3, 4, 3), (2, 1, 1, 5, 5, 5), (1, 2, 2, 3, 3, 1)], ids=str
)
def test_conv_2d_against_lax_reference(case):
    n, c, o, h, w, k = case
    kx, kw = jax.random.split(jax.random.key(4))
    x = jax.random.normal(kx, (n, c, h, w), jnp.float64)
    W = jax.random.normal(kw, (c, o, k, k), jnp.float64)
    check_vjp(jax.jit(conv2d_loops), conv2d_reference, (x, W))


def test_conv_2d_matches_the_fast_implementations():
    kx, kw, kg = jax.random.split(jax.random.key(5), 3)
    x = jax.random.normal(kx, (2, 2, 4, 5), jnp.float64)
    W = jax.random.normal(kw, (2, 3, 3, 3), jnp.float64)
    g = jax.random.normal(kg, (2, 3, 4, 5), jnp.float64)
    out_loops, vjp_loops = jax.vjp(conv2d_loops, x, W)
    for impl in (conv2d, conv2d_im2col):
        out, vjp = jax.vjp(impl, x, W)
        np.testing.assert_allclose(out_loops, out, rtol=1e-12)
        for a, b in zip(vjp_loops(g), vjp(g), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize(
    "x_shape, w_shape, match",
    [
        ((2, 3, 4), (3,), "shape \\(length,\\) or \\(batch, length\\)"),
        ((5,), (2,), "odd length"),
        ((5,), (3, 1), "odd length"),
    ],
)
def test_conv_1d_bad_shapes(x_shape, w_shape, match):
    with pytest.raises(ValueError, match=match):
        conv1d_loops(jnp.ones(x_shape), jnp.ones(w_shape))


def test_conv_2d_bad_shapes():
    with pytest.raises(ValueError, match="kernel size must be odd"):
        conv2d_loops(jnp.ones((1, 1, 4, 4)), jnp.ones((1, 1, 2, 2)))
    with pytest.raises(ValueError, match="input has 1 channels but the kernel expects 2"):
        conv2d_loops(jnp.ones((1, 1, 4, 4)), jnp.ones((2, 1, 3, 3)))


def test_harness_with_mixed_dtypes_on_the_loop_ops():
    # check_op adds check (d) with float32 x and float64 kernel (and the reverse): each gradient in its input's
    # dtype, the custom_vjp contract (issue 13, item 4).
    kx, kw = jax.random.split(jax.random.key(5))
    check_op(conv1d_loops, jax.random.normal(kx, (2, 5), jnp.float64), jax.random.normal(kw, (3,), jnp.float64))
    check_op(
        conv2d_loops, jax.random.normal(kx, (2, 2, 3, 4), jnp.float64), jax.random.normal(kw, (2, 3, 3, 3), jnp.float64)
    )


@pytest.mark.parametrize("op", [conv1d_loops, conv2d_loops], ids=lambda f: f.name)
def test_float32_input_float64_kernel_gradients_keep_each_dtype(op):
    x = jnp.ones((2, 5), jnp.float32) if op is conv1d_loops else jnp.ones((1, 2, 4, 4), jnp.float32)
    w = jnp.ones((3,), jnp.float64) if op is conv1d_loops else jnp.ones((2, 1, 3, 3), jnp.float64)
    dx, dw = jax.grad(lambda x, w: jnp.sum(op(x, w)), (0, 1))(x, w)
    assert (dx.dtype, dw.dtype) == (jnp.float32, jnp.float64)
    dx, dw = jax.grad(lambda x, w: jnp.sum(op(x, w)), (0, 1))(x.astype(jnp.float64), w.astype(jnp.float32))
    assert (dx.dtype, dw.dtype) == (jnp.float64, jnp.float32)


# ---------------------------------------------------------------- property tests (tests/strategies.py)

# The shapes of test_conv2d_ops (tests/ops/test_conv.py) with c * o * k * k <= 18: every kernel entry and channel
# pair is a separate Python-level term. (batch, in_channels, height, width, out_channels, k)
LOOP_SHAPES = ((1, 1, 1, 1, 1, 3), (2, 2, 4, 5, 1, 3))


@PROPERTY
@given(st.data(), st.sampled_from(LOOP_SHAPES))
def test_conv2d_loops_op(data, shape):
    """The chapter's loops (conv2d_loops) on the smaller shapes. Split from test_conv2d_ops, whose bundle it was."""
    b, c, h, w, o, k = shape
    x, W = draw(data, (b, c, h, w)), draw(data, (c, o, k, k))
    assert_vjps_agree({"conv2d_loops (loops)": (call(conv2d_loops), (x, W), 2)}, seed(data))
