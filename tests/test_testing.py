"""fdl.testing, the harness itself: it passes correct backward passes (a ReLU conv net on exact-zero backgrounds
included) and catches the book's kind of mistakes; its messages name the check, the layer and the parameter, a
gradient of the wrong dtype, float32 params and x64 switched off."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fdl import dense, layers, ops, serial
from fdl.losses import mean_squared_error, softmax_cross_entropy
from fdl.testing import check_cotangent_dtypes, check_model, check_op, check_vjp

X = jax.random.normal(jax.random.key(0), (5, 3), jnp.float64)
W = jax.random.normal(jax.random.key(1), (3, 4), jnp.float64)


def wrong(backward, name):
    """An op with the real forward of weight_multiply and a given (wrong) backward."""
    return ops.Op(ops.weight_multiply.forward, backward, name)


@pytest.mark.parametrize(
    "op",
    [
        wrong(lambda g, out, x, W: (-(g @ W.T), x.T @ g), "sign_flipped"),
        wrong(lambda g, out, x, W: (g @ W.T, (x.T @ g) / x.shape[0]), "averaged_param_grad"),
        wrong(lambda g, out, x, W: (g @ W.T, x.T @ g * 1.001), "off_by_0.1_percent"),
        ops.Op(ops.relu.forward, lambda g, out, x: (jnp.where(out >= 0, g, 0.0),), "book_relu_erratum_3"),
        ops.Op(ops.sigmoid.forward, lambda g, out, x: (g * out,), "missing_term"),
    ],
)
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


@pytest.mark.parametrize(
    "op,match",
    [
        (
            wrong(lambda g, out, x, W: (-(g @ W.T), x.T @ g), "sign_flipped"),
            r"manual vs autodiff \(check b: VJPs\): gradient of sign_flipped argument 0",
        ),
        (
            wrong(lambda g, out, x, W: (g @ W.T, (x.T @ g) / x.shape[0]), "averaged_param_grad"),
            r"manual vs autodiff \(check b: VJPs\): gradient of averaged_param_grad argument 1",
        ),
    ],
)
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
    params = model.init(jax.random.key(0), (3,))  # float32: gradient_agreement casts to float64
    x, y = np.random.RandomState(0).randn(5, 3), np.random.RandomState(1).randn(5, 2)
    loss_of = lambda g: lambda p, x, y: fdl.mean_squared_error(model.apply(p, x, grad=g), y, grad=g)
    assert gradient_agreement(loss_of, params, x, y) < 1e-12

    wrong = op(lambda g, out, x: (-g,))(lambda x: x)  # identity with a flipped backward
    loss_wrong = lambda g: lambda p, x, y: fdl.mean_squared_error(wrong(model.apply(p, x, grad=g), grad=g), y, grad=g)
    assert gradient_agreement(loss_wrong, params, x, y) == pytest.approx(2.0)


_LOWERED: list = []  # the list each program lowered (compiled, or loaded from the disk cache) goes to while counting


def _count_lowering(event, seconds, **kwargs):
    if _LOWERED and event == "/jax/core/compile/jaxpr_to_mlir_module_duration":
        _LOWERED[-1].append(event)


jax.monitoring.register_event_duration_secs_listener(_count_lowering)


def test_gradient_agreement_is_three_programs_and_the_eager_number_bit_for_bit():
    """Each gradient's program and one for the comparison (not an eager op per leaf and shape); the number is the
    eager formula's over the same two gradients."""
    import fdl
    from fdl.precision import matmul_precision
    from fdl.testing import gradient_agreement

    model = fdl.serial(fdl.dense(5, "tanh"), fdl.dense(4, "sigmoid"), fdl.dense(2))
    params = model.init(jax.random.key(0), (3,))
    x, y = np.random.RandomState(0).randn(6, 3).astype(np.float32), np.random.RandomState(1).randn(6, 2)
    loss_of = lambda g: lambda p, x, y: fdl.mean_squared_error(model.apply(p, x, grad=g), y, grad=g)
    lowered: list = []
    _LOWERED.append(lowered)
    try:
        agreement = gradient_agreement(loss_of, params, x, y)
    finally:
        _LOWERED.remove(lowered)
    assert len(lowered) == 3  # the shapes are this test's own: no program of them is compiled yet
    with matmul_precision("highest"):
        p64, x64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), (params, x))
        manual, auto = (jax.tree.leaves(jax.jit(jax.grad(loss_of(g)))(p64, x64, y)) for g in ("manual", "autodiff"))
    eager = max(float(jnp.max(jnp.abs(m - a))) for m, a in zip(manual, auto, strict=True)) / max(
        float(jnp.max(jnp.abs(a))) for a in auto
    )
    assert agreement == eager


# ---------------------------------------------------------------- the messages; kinks in check (c)


def test_harness_names_a_leaf_whose_gradient_has_the_wrong_dtype():
    @jax.custom_vjp
    def scale(x, w):
        return x * w

    scale.defvjp(
        lambda x, w: (x * w, (x, w)),
        lambda res, g: ((g * res[1]).astype(jnp.float64), jnp.sum(g * res[0]).astype(jnp.float64)),
    )
    x, w = jnp.ones(3, jnp.float64), jnp.asarray(2.0, jnp.float32)
    with pytest.raises(
        AssertionError,
        match=r"cotangent dtypes \(check d\): the gradient of w is float64 but its "
        r"input is float32",
    ):
        check_cotangent_dtypes(lambda x, w: scale(x, w).sum(), (x, w), arg_names=("x", "w"))
    with pytest.raises(
        AssertionError,
        match=r"check d.*argument 0 is float64 but its input is float32.*argument 0 "
        r"in float32",
    ):
        check_vjp(lambda a, b: scale(a, b).sum(), lambda a, b: (a * b).sum(), (x, jnp.asarray(2.0)), mixed_dtypes=True)


def mnist_like(seed, n=2, size=8):
    """Images with exact-zero backgrounds and a bright 4 x 4 square, like MNIST digits."""
    x = np.zeros((n, 1, size, size))
    x[:, :, 2:6, 2:6] = np.random.default_rng(seed).uniform(0.2, 1.0, (n, 1, 4, 4))
    return jnp.asarray(x)


def relu_conv_net():
    return serial(layers.conv2d(3, 3, "relu", flatten=True), dense(4, "relu"), dense(3))


def test_a_correct_relu_conv_net_on_zero_backgrounds_passes_check_model():
    # Before: check (c) failed with jax's bare "VJP cotangent projection" (finite differences across relu's kink).
    model = relu_conv_net()
    params = model.init(jax.random.key(0), (1, 8, 8), jnp.float64)
    y = jax.nn.one_hot(jnp.array([0, 2]), 3, dtype=jnp.float64)
    check_model(model, params, mnist_like(0), y, softmax_cross_entropy)


def test_the_kink_is_crossed_at_the_given_point_so_check_c_needs_the_nudged_points(monkeypatch):
    # The background pixels put exact zeros into the conv's relu; a finite difference in x crosses the kink.
    import fdl.testing

    model = relu_conv_net()
    params = model.init(jax.random.key(0), (1, 8, 8), jnp.float64)
    assert int(jnp.sum(ops.conv2d(mnist_like(0), params[0]["W"]) == 0.0)) > 0
    monkeypatch.setattr(fdl.testing, "FD_RETRIES", 0)
    y = jax.nn.one_hot(jnp.array([0, 2]), 3, dtype=jnp.float64)
    with pytest.raises(AssertionError, match=r"finite differences \(check c\): the hand-written gradient of x "):
        check_model(model, params, mnist_like(0), y, softmax_cross_entropy)


def wrong_bias_dense(neurons):
    """dense(neurons) whose bias gradient is scaled by 1.01: a subtle bug in one parameter."""
    bad = ops.Op(ops.bias_add.forward, lambda g, out, x, B: (g, 1.01 * jnp.sum(g, axis=0, keepdims=True)), "bad_bias")
    layer = dense(neurons)

    def apply(params, x, *, key=None, train=False, grad="manual"):
        return bad(ops.weight_multiply(x, params["W"], grad=grad), params["B"], grad=grad)

    return layers.Layer(layer.init, apply, layer.output_shape, "wrong_bias_dense")


def test_harness_names_the_check_layer_and_parameter():
    model = serial(dense(4, "tanh"), wrong_bias_dense(2))
    params = model.init(jax.random.key(0), (3,), jnp.float64)
    x, y = jax.random.normal(jax.random.key(1), (5, 3), jnp.float64), jnp.zeros((5, 2), jnp.float64)
    with pytest.raises(
        AssertionError,
        match=r"manual vs autodiff \(check b: VJPs\): gradient of params\[1\]\['B'\] "
        r"\(layer 1, parameter 'B'\)",
    ):
        check_model(model, params, x, y, mean_squared_error)


def test_finite_difference_failures_name_the_leaf():
    # The autodiff reference shares the bug, so only finite differences (c) can catch it.
    model = serial(dense(4, "tanh"), wrong_bias_dense(2))
    params = model.init(jax.random.key(0), (3,), jnp.float64)
    x, y = jax.random.normal(jax.random.key(1), (5, 3), jnp.float64), jnp.zeros((5, 2), jnp.float64)

    def f(p):
        return mean_squared_error(model.apply(p, x), y)

    with pytest.raises(
        AssertionError,
        match=r"finite differences \(check c\): the hand-written gradient of "
        r"params\[1\]\['B'\] \(layer 1, parameter 'B'\) disagrees",
    ):
        check_vjp(f, f, (params,), arg_names=("params",))


def test_forward_mismatch_names_the_check():
    with pytest.raises(AssertionError, match=r"forward \(check a"):
        check_vjp(jnp.sin, jnp.cos, [jnp.ones(3)], numerical=False)


# ---------------------------------------------------------------- float32 params: the cause and the fix


def test_float32_params_are_refused_naming_model_init():
    model = serial(dense(2))
    params = model.init(jax.random.key(0), (3,))  # float32 by default, even with x64 on
    x, y = jnp.ones((4, 3)), jnp.zeros((4, 2))
    with pytest.raises(
        ValueError,
        match=r"got float32 for params\[0\]\['B'\] \(layer 0, parameter 'B'\)\. "
        r"model\.init returns float32 params by default, even with x64 on: .*"
        r"model\.init\(key, input_shape, dtype=jnp\.float64\)",
    ):
        check_model(model, params, x, y, mean_squared_error)
    with pytest.raises(ValueError, match=r"got float32 for relu argument 0\. Convert it with x\.astype"):
        check_op(ops.relu, jnp.ones(3, jnp.float32))


def test_x64_off_is_named():
    with jax.enable_x64(False):
        with pytest.raises(ValueError, match=r"jax_enable_x64 is off.*jax\.config\.update\('jax_enable_x64', True\)"):
            check_vjp(jnp.sin, jnp.sin, [np.ones(3)])
