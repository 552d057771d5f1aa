"""Every element-wise, dense and reshape op: hand-written VJP == jax.grad == finite differences (float64)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fdl import ops
from fdl.testing import check_op

SHAPES = [(1, 1), (1, 7), (5, 3), (64, 33)]


def normal(seed, shape, scale=1.0):
    return scale * jax.random.normal(jax.random.key(seed), shape, jnp.float64)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", sorted(ops.ACTIVATIONS))
def test_activation(name, shape):
    check_op(ops.ACTIVATIONS[name], normal(1, shape, 2.0))


def test_leaky_relu_slope_is_static_and_used_in_both_passes():
    x = normal(2, (4, 5))
    check_op(ops.leaky_relu, x, slope=0.05)
    g = jax.grad(lambda v: ops.leaky_relu(v, slope=0.05).sum())(jnp.array([-1.0, 2.0]))
    np.testing.assert_allclose(g, [0.05, 1.0])


def test_relu_gradient_is_zero_for_negative_inputs():
    # Erratum 3: the book's mask lets gradients through negative inputs.
    g = jax.grad(lambda v: ops.relu(v).sum())(jnp.array([-2.0, -0.5, 0.5, 3.0]))
    np.testing.assert_array_equal(g, [0.0, 0.0, 1.0, 1.0])


@pytest.mark.parametrize("n,i,o", [(1, 1, 1), (1, 13, 1), (7, 3, 5), (60, 89, 10)])
def test_weight_multiply(n, i, o):
    check_op(ops.weight_multiply, normal(3, (n, i)), normal(4, (i, o)))


@pytest.mark.parametrize("n,f", [(1, 1), (9, 4), (60, 89)])
def test_bias_add(n, f):
    check_op(ops.bias_add, normal(5, (n, f)), normal(6, (1, f)))


@pytest.mark.parametrize("shape", [(1, 3), (2, 3, 4), (5, 1, 6, 6)])
def test_flatten(shape):
    check_op(ops.flatten, normal(7, shape))
    assert ops.flatten(jnp.zeros(shape)).shape == (shape[0], int(np.prod(shape[1:])))


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


@pytest.mark.parametrize("kwargs,match", [
    (dict(keep_prob=0.0), "keep_prob"), (dict(keep_prob=1.5), "keep_prob"),
    (dict(keep_prob=0.5, mode="alpha"), "mode"), (dict(keep_prob=0.5, key=None), "key")])
def test_dropout_bad_arguments(kwargs, match):
    kwargs.setdefault("key", jax.random.key(0))
    with pytest.raises(ValueError, match=match):
        ops.dropout_mask(shape=(2, 2), **kwargs)


def test_shape_errors_name_the_op_and_shapes():
    with pytest.raises(ValueError, match=r"weight_multiply: input has 4 features but W expects 3"):
        ops.weight_multiply(jnp.ones((2, 4)), jnp.ones((3, 5)))
    with pytest.raises(ValueError, match=r"weight_multiply input: expected a 2-D array"):
        ops.weight_multiply(jnp.ones((2, 4, 1)), jnp.ones((4, 5)))
    with pytest.raises(ValueError, match=r"bias_add: B must have shape \(1, 5\)"):
        ops.bias_add(jnp.ones((2, 5)), jnp.ones((5,)))


def test_unknown_grad_mode_and_activation():
    with pytest.raises(ValueError, match="grad must be one of"):
        ops.sigmoid(jnp.ones(2), grad="numeric")
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        ops.get_activation("swish")


def test_manual_path_uses_the_handwritten_backward():
    # A deliberately altered backward changes jax.grad of the manual path only.
    calls = []

    def backward(g, out, x):
        calls.append(1)
        return (3.0 * g,)

    triple = ops.Op(lambda x: x, backward, "triple_grad")
    x = jnp.ones(3)
    np.testing.assert_allclose(jax.grad(lambda v: triple(v).sum())(x), 3.0)
    np.testing.assert_allclose(jax.grad(lambda v: triple(v, grad="autodiff").sum())(x), 1.0)
    assert calls
