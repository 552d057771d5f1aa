"""Losses: hand-written gradients, stability, erratum 1 and errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fdl.losses import get_loss, mean_squared_error, softmax_cross_entropy
from fdl.testing import check_op


def normal(seed, shape, scale=1.0):
    return scale * jax.random.normal(jax.random.key(seed), shape, jnp.float64)


def one_hot(seed, shape):
    labels = jax.random.randint(jax.random.key(seed), shape[:-1], 0, shape[-1])
    return jax.nn.one_hot(labels, shape[-1], dtype=jnp.float64)


@pytest.mark.parametrize("shape", [(1, 1), (32, 1), (5, 10), (3, 4, 2)])
def test_mse(shape):
    check_op(mean_squared_error, normal(1, shape), normal(2, shape))


def test_mse_is_the_books_sum_over_batch():
    p, y = jnp.array([[1.0, 2.0], [3.0, 5.0]]), jnp.zeros((2, 2))
    assert float(mean_squared_error(p, y)) == pytest.approx((1 + 4 + 9 + 25) / 2)


@pytest.mark.parametrize("shape", [(1, 2), (1, 10), (60, 10), (4, 25, 7)])
def test_softmax_cross_entropy(shape):
    check_op(softmax_cross_entropy, normal(3, shape, 3.0), one_hot(4, shape))


def test_softmax_cross_entropy_soft_targets():
    y = jax.nn.softmax(normal(6, (5, 4)))
    check_op(softmax_cross_entropy, normal(5, (5, 4)), y)


def test_softmax_cross_entropy_is_categorical_and_gradient_is_p_minus_y():
    # Erratum 1: the value is -sum(y log p)/N, the loss whose gradient is (p - y)/N.
    z = normal(7, (6, 5))
    y = one_hot(8, (6, 5))
    p = jax.nn.softmax(z)
    assert float(softmax_cross_entropy(z, y)) == pytest.approx(float(-jnp.sum(y * jnp.log(p)) / 6), rel=1e-12)
    np.testing.assert_allclose(jax.grad(softmax_cross_entropy)(z, y), (p - y) / 6, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("scale", [1e2, 1e4])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_softmax_cross_entropy_extreme_logits_are_finite(scale, dtype):
    z = (scale * jnp.array([[1.0, -1.0, 0.0], [-1.0, 1.0, 1.0]])).astype(dtype)
    y = jnp.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], dtype)
    for grad in ("manual", "autodiff"):
        value, g = jax.value_and_grad(lambda v, mode=grad: softmax_cross_entropy(v, y, grad=mode))(z)
        assert np.isfinite(float(value)) and np.all(np.isfinite(g))
        assert float(value) == pytest.approx((4 * scale + np.log(2.0)) / 2, rel=1e-5)


def test_loss_shape_errors():
    with pytest.raises(ValueError, match=r"mean_squared_error: predictions and targets must have the same shape"):
        mean_squared_error(jnp.ones((3, 1)), jnp.ones((3,)))
    with pytest.raises(ValueError, match=r"softmax_cross_entropy: logits and targets"):
        softmax_cross_entropy(jnp.ones((3, 10)), jnp.ones((3, 9)))
    with pytest.raises(ValueError, match="2-D"):
        softmax_cross_entropy(jnp.ones(3), jnp.ones(3))
    with pytest.raises(ValueError, match="unknown loss"):
        get_loss("hinge")


def test_mse_over_elements_is_the_per_pixel_mean():
    p, y = normal(9, (4, 3, 5)), normal(10, (4, 3, 5))
    check_op(mean_squared_error, p, y, over="elements")
    assert float(mean_squared_error(p, y, over="elements")) == pytest.approx(float(jnp.mean((p - y) ** 2)))
    with pytest.raises(ValueError, match="over must be one of"):
        mean_squared_error(p, y, over="pixels")
