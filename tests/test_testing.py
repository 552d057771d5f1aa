"""The harness itself: it passes correct backward passes and catches the book's kind of mistakes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fdl import ops
from fdl.testing import check_op, check_vjp

X = jax.random.normal(jax.random.key(0), (5, 3), jnp.float64)
W = jax.random.normal(jax.random.key(1), (3, 4), jnp.float64)


def wrong(backward, name):
    """An op with the real forward of weight_multiply and a given (wrong) backward."""
    return ops.Op(ops.weight_multiply.forward, backward, name)


@pytest.mark.parametrize("op", [
    wrong(lambda g, out, x, W: (-(g @ W.T), x.T @ g), "sign_flipped"),
    wrong(lambda g, out, x, W: (g @ W.T, (x.T @ g) / x.shape[0]), "averaged_param_grad"),
    wrong(lambda g, out, x, W: (g @ W.T, x.T @ g * 1.001), "off_by_0.1_percent"),
    ops.Op(ops.relu.forward, lambda g, out, x: (jnp.where(out >= 0, g, 0.0),), "book_relu_erratum_3"),
    ops.Op(ops.sigmoid.forward, lambda g, out, x: (g * out,), "missing_term"),
])
def test_harness_catches_wrong_backward(op):
    args = (X, W) if op.forward is ops.weight_multiply.forward else (X,)
    with pytest.raises(AssertionError):
        check_op(op, *args)


def test_catches_a_missing_transpose_when_shapes_happen_to_fit():
    square = jax.random.normal(jax.random.key(2), (3, 3), jnp.float64)
    op = wrong(lambda g, out, x, W: (g @ W, x.T @ g), "missing_transpose")
    with pytest.raises(AssertionError):
        check_op(op, X, square)


def test_accepts_correct_backward():
    check_op(ops.weight_multiply, X, W)


def test_float32_is_refused_with_advice():
    with pytest.raises(ValueError, match="float64"):
        check_vjp(jnp.sin, jnp.sin, [jnp.ones(3, jnp.float32)])


def test_forward_mismatch_is_reported():
    with pytest.raises(AssertionError, match="forward"):
        check_vjp(jnp.sin, jnp.cos, [X], numerical=False)


@pytest.mark.parametrize("op,match", [
    (wrong(lambda g, out, x, W: (-(g @ W.T), x.T @ g), "sign_flipped"),
     r"manual vs autodiff \(check b: VJPs\): gradient of sign_flipped argument 0"),
    (wrong(lambda g, out, x, W: (g @ W.T, (x.T @ g) / x.shape[0]), "averaged_param_grad"),
     r"manual vs autodiff \(check b: VJPs\): gradient of averaged_param_grad argument 1"),
])
def test_failures_name_the_check_and_the_argument(op, match):
    with pytest.raises(AssertionError, match=match):
        check_op(op, X, W)


def test_a_backward_returning_the_wrong_dtype_is_caught_through_op():
    # fdl.ops.Op casts every gradient to its input's dtype, so a float64 formula on a float32 W is harmless.
    leaky = wrong(lambda g, out, x, W: ((g @ W.T).astype(jnp.float64), (x.T @ g).astype(jnp.float64)), "f64_grads")
    check_op(leaky, X, W)  # mixed dtypes (float32 x or W) included: no AssertionError


def test_gradient_agreement_is_tiny_for_a_right_model_and_large_for_a_wrong_one():
    import fdl
    from fdl.ops import op
    from fdl.testing import gradient_agreement
    model = fdl.serial(fdl.dense(4, "tanh"), fdl.dense(2))
    params = model.init(jax.random.key(0), (3,))           # float32: gradient_agreement casts to float64
    x, y = np.random.RandomState(0).randn(5, 3), np.random.RandomState(1).randn(5, 2)
    loss_of = lambda g: lambda p, x, y: fdl.mean_squared_error(model.apply(p, x, grad=g), y, grad=g)
    assert gradient_agreement(loss_of, params, x, y) < 1e-12

    wrong = op(lambda g, out, x: (-g,))(lambda x: x)      # identity with a flipped backward
    loss_wrong = lambda g: lambda p, x, y: fdl.mean_squared_error(wrong(model.apply(p, x, grad=g), grad=g), y,
                                                                  grad=g)
    assert gradient_agreement(loss_wrong, params, x, y) == pytest.approx(2.0)
