"""Issue 13's edge cases: each one the right value, in both gradient modes.

1. softmax cross-entropy at -inf (masked) and +inf logits; 2. degenerate shapes refused, integer labels;
3. kinks (relu, leaky_relu at exactly 0); 4. cotangent dtypes (float32 params, float64 data);
6. the harness names the failing check and parameter, and passes a correct ReLU conv net on images with
exact-zero backgrounds; 7. float32 params refused with the cause and the fix.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fdl import dense, layers, metrics, ops, serial
from fdl.losses import mean_squared_error, softmax_cross_entropy
from fdl.testing import check_cotangent_dtypes, check_model, check_op, check_vjp

MODES = ("manual", "autodiff")
INF = float("inf")


def value_and_grad(loss, z, y, mode):
    return jax.value_and_grad(lambda v: loss(v, y, grad=mode))(z)


# ---------------------------------------------------------------- 1. infinite logits

@pytest.mark.parametrize("mode", MODES)
def test_minus_inf_logit_on_a_zero_target_is_masked(mode):
    # Before: NaN loss in both modes (0 * -inf). log(1 + e) = 1.3133; gradient softmax([0, 1]) - y.
    z, y = jnp.array([[-INF, 0.0, 1.0]]), jnp.array([[0.0, 1.0, 0.0]])
    value, g = value_and_grad(softmax_cross_entropy, z, y, mode)
    assert float(value) == pytest.approx(math.log(1 + math.e), rel=1e-12)
    s = 1 / (1 + math.e)
    np.testing.assert_allclose(g, [[0.0, s - 1, 1 - s]], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(g, [[0.0, -0.7311, 0.7311]], atol=1e-4)


@pytest.mark.parametrize("mode", MODES)
def test_target_gradient_at_a_masked_class_is_zero(mode):
    z, y = jnp.array([[-INF, 0.0, 1.0]]), jnp.array([[0.0, 1.0, 0.0]])
    gy = jax.grad(lambda t: softmax_cross_entropy(z, t, grad=mode))(y)
    # dL/dy = -log p: log(1 + e) and log(1 + e) - 1 on the live classes, 0 (not +inf or NaN) on the masked one.
    np.testing.assert_allclose(gy, [[0.0, math.log(1 + math.e), math.log(1 + math.e) - 1]], rtol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_plus_inf_logits_share_the_probability(mode):
    # One +inf logit on the target: loss 0; two +inf logits, target on one: log 2; gradient 0 (saturated).
    z = jnp.array([[INF, 0.0, 1.0], [INF, INF, 0.0]])
    y = jnp.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    value, g = value_and_grad(softmax_cross_entropy, z, y, mode)
    assert float(value) == pytest.approx(math.log(2) / 2, rel=1e-12)
    np.testing.assert_array_equal(g, np.zeros((2, 3)))


@pytest.mark.parametrize("mode", MODES)
def test_all_minus_inf_row_and_a_target_on_an_impossible_class(mode):
    # A fully masked row with zero targets contributes 0; a target on a -inf class makes the loss +inf (not NaN).
    z, y = jnp.array([[-INF, -INF], [0.0, 0.0]]), jnp.array([[0.0, 0.0], [1.0, 0.0]])
    assert float(softmax_cross_entropy(z, y, grad=mode)) == pytest.approx(math.log(2) / 2, rel=1e-12)
    z2, y2 = jnp.array([[-INF, 0.0]]), jnp.array([[1.0, 0.0]])
    assert float(softmax_cross_entropy(z2, y2, grad=mode)) == INF


def test_infinite_logits_pass_the_harness_without_finite_differences():
    z = jnp.array([[-INF, 0.0, 1.0], [INF, 2.0, INF], [0.5, -INF, -1.0]])
    y = jnp.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.3, 0.0, 0.7]])
    check_op(softmax_cross_entropy, z, y, numerical=False)


# ---------------------------------------------------------------- 2. degenerate shapes, integer labels

def test_single_class_column_is_refused_with_the_binary_recipe():
    # Before: loss 0.0 and gradient 0 (softmax of one logit is 1), training silently did nothing.
    with pytest.raises(ValueError, match=r"single class column.*dense\(2\).*fdl\.data\.one_hot\(labels, 2\)"):
        softmax_cross_entropy(jnp.array([[0.3], [2.0]]), jnp.array([[1.0], [0.0]]))
    with pytest.raises(ValueError, match="single class column"):
        metrics.accuracy(jnp.ones((4, 1)), jnp.ones((4, 1)))


@pytest.mark.parametrize("loss,p,y,match", [
    (softmax_cross_entropy, jnp.ones((0, 3)), jnp.ones((0, 3)), "non-empty batch"),
    (softmax_cross_entropy, jnp.ones((2, 0)), jnp.ones((2, 0)), "non-empty batch"),
    (softmax_cross_entropy, jnp.ones((2, 3)), jnp.ones((3, 2)), "must have the same shape"),
    (softmax_cross_entropy, jnp.ones(3), jnp.ones(3), "2-D"),
    (mean_squared_error, jnp.ones((0, 1)), jnp.ones((0, 1)), "non-empty batch"),
    (mean_squared_error, jnp.ones((3, 0)), jnp.ones((3, 0)), "non-empty batch"),
    (mean_squared_error, jnp.ones(()), jnp.ones(()), "non-empty batch"),
    (mean_squared_error, jnp.ones((3, 1)), jnp.ones(3), "must have the same shape"),
])
@pytest.mark.parametrize("mode", MODES)
def test_degenerate_shapes_are_refused(loss, p, y, match, mode):
    with pytest.raises(ValueError, match=match):
        loss(p, y, grad=mode)


@pytest.mark.parametrize("metric", [metrics.mae, metrics.rmse, metrics.accuracy])
def test_metrics_refuse_an_empty_batch(metric):
    with pytest.raises(ValueError, match="empty batch"):
        metric(jnp.ones((0, 3)), jnp.ones((0, 3)))


@pytest.mark.parametrize("mode", MODES)
def test_integer_labels_are_accepted_as_accuracy_accepts_them(mode):
    # Before: "logits and targets must have the same shape, got (2, 3) and (2,)".
    z = jnp.array([[1.0, 2.0, 3.0], [0.0, 0.0, 5.0]])
    labels = jnp.array([2, 0])
    one_hot = jax.nn.one_hot(labels, 3, dtype=z.dtype)
    v_int, g_int = value_and_grad(softmax_cross_entropy, z, labels, mode)
    v_hot, g_hot = value_and_grad(softmax_cross_entropy, z, one_hot, mode)
    assert float(v_int) == float(v_hot)
    assert float(v_int) == pytest.approx(float(-(jax.nn.log_softmax(z)[0, 2] + jax.nn.log_softmax(z)[1, 0]) / 2))
    np.testing.assert_array_equal(g_int, g_hot)


def test_bad_integer_labels_say_what_to_do():
    z = jnp.zeros((2, 3))
    with pytest.raises(ValueError, match=r"must lie in \[0, 3\).*\[3\]"):
        softmax_cross_entropy(z, jnp.array([3, 0]))
    with pytest.raises(ValueError, match=r"shape \(2,\).*fdl\.data\.one_hot"):
        softmax_cross_entropy(z, jnp.array([[1, 0]]))
    # Under jit the values are unknown: an out-of-range label gives NaN (fit stops on it), never a silent 0.
    assert np.isnan(float(jax.jit(softmax_cross_entropy)(z, jnp.array([3, 0]))))


# ---------------------------------------------------------------- 3. kinks

@pytest.mark.parametrize("mode", MODES)
def test_kinks_take_the_left_derivative_in_both_modes(mode):
    # Before: jax.grad of relu's plain forward (jnp.maximum) gave 0.5 at 0; the hand-written backward 0.
    x = jnp.array([-1.0, -0.0, 0.0, 2.0])
    np.testing.assert_array_equal(jax.grad(lambda v: ops.relu(v, grad=mode).sum())(x), [0.0, 0.0, 0.0, 1.0])
    np.testing.assert_array_equal(jax.grad(lambda v: ops.leaky_relu(v, grad=mode, slope=0.1).sum())(x),
                                  [0.1, 0.1, 0.1, 1.0])


@pytest.mark.parametrize("name", ["relu", "leaky_relu"])
def test_activations_at_exact_zeros_pass_the_harness(name):
    x = jnp.array([[0.0, -0.0, 1.5, -2.0], [0.0, 0.0, 0.0, 3.0]])
    check_op(ops.ACTIVATIONS[name], x)


# ---------------------------------------------------------------- 4. cotangent dtypes

@pytest.mark.parametrize("mode", MODES)
def test_float32_params_with_float64_data_get_float32_gradients(mode):
    # Before (manual): float64 gradients for float32 params; fit with momentum failed inside the scanned epoch.
    model = serial(dense(4, "relu"), dense(3))
    params = model.init(jax.random.key(0), (5,))
    x = jax.random.normal(jax.random.key(1), (6, 5), jnp.float64)
    y = jax.nn.one_hot(jnp.arange(6) % 3, 3, dtype=jnp.float64)

    def loss(p):
        return softmax_cross_entropy(model.apply(p, x, grad=mode), y, grad=mode)

    grads = jax.grad(loss)(params)
    assert {str(g.dtype) for g in jax.tree.leaves(grads)} == {"float32"}
    opt = optax.sgd(0.1, momentum=0.9)

    def step(carry, _):
        p, state = carry
        updates, state = opt.update(jax.grad(loss)(p), state, p)
        return (optax.apply_updates(p, updates), state), None

    (p, _), _ = jax.lax.scan(step, (params, opt.init(params)), length=2)
    assert {str(a.dtype) for a in jax.tree.leaves(p)} == {"float32"}


def test_integer_targets_get_a_float0_gradient():
    p, y = jnp.array([[1.0], [2.0]]), jnp.array([[1], [4]])
    assert float(mean_squared_error(p, y)) == pytest.approx((0 + 4) / 2)
    np.testing.assert_allclose(jax.grad(mean_squared_error)(p, y), [[0.0], [-2.0]])


def test_harness_names_a_leaf_whose_gradient_has_the_wrong_dtype():
    @jax.custom_vjp
    def scale(x, w):
        return x * w

    scale.defvjp(lambda x, w: (x * w, (x, w)),
                 lambda res, g: ((g * res[1]).astype(jnp.float64), jnp.sum(g * res[0]).astype(jnp.float64)))
    x, w = jnp.ones(3, jnp.float64), jnp.asarray(2.0, jnp.float32)
    with pytest.raises(AssertionError, match=r"cotangent dtypes \(check d\): the gradient of w is float64 but its "
                                             r"input is float32"):
        check_cotangent_dtypes(lambda x, w: scale(x, w).sum(), (x, w), arg_names=("x", "w"))
    with pytest.raises(AssertionError, match=r"check d.*argument 0 is float64 but its input is float32.*argument 0 "
                                             r"in float32"):
        check_vjp(lambda a, b: scale(a, b).sum(), lambda a, b: (a * b).sum(), (x, jnp.asarray(2.0)),
                  mixed_dtypes=True)


# ---------------------------------------------------------------- 6. the harness's messages, kinks in check (c)

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
    with pytest.raises(AssertionError, match=r"manual vs autodiff \(check b: VJPs\): gradient of params\[1\]\['B'\] "
                                             r"\(layer 1, parameter 'B'\)"):
        check_model(model, params, x, y, mean_squared_error)


def test_finite_difference_failures_name_the_leaf():
    # The autodiff reference shares the bug, so only finite differences (c) can catch it.
    model = serial(dense(4, "tanh"), wrong_bias_dense(2))
    params = model.init(jax.random.key(0), (3,), jnp.float64)
    x, y = jax.random.normal(jax.random.key(1), (5, 3), jnp.float64), jnp.zeros((5, 2), jnp.float64)

    def f(p):
        return mean_squared_error(model.apply(p, x), y)

    with pytest.raises(AssertionError, match=r"finite differences \(check c\): the hand-written gradient of "
                                             r"params\[1\]\['B'\] \(layer 1, parameter 'B'\) disagrees"):
        check_vjp(f, f, (params,), arg_names=("params",))


def test_forward_mismatch_names_the_check():
    with pytest.raises(AssertionError, match=r"forward \(check a"):
        check_vjp(jnp.sin, jnp.cos, [jnp.ones(3)], numerical=False)


# ---------------------------------------------------------------- 7. float32 params: the cause and the fix

def test_float32_params_are_refused_naming_model_init():
    model = serial(dense(2))
    params = model.init(jax.random.key(0), (3,))  # float32 by default, even with x64 on
    x, y = jnp.ones((4, 3)), jnp.zeros((4, 2))
    with pytest.raises(ValueError, match=r"got float32 for params\[0\]\['B'\] \(layer 0, parameter 'B'\)\. "
                                         r"model\.init returns float32 params by default, even with x64 on: .*"
                                         r"model\.init\(key, input_shape, dtype=jnp\.float64\)"):
        check_model(model, params, x, y, mean_squared_error)
    with pytest.raises(ValueError, match=r"got float32 for relu argument 0\. Convert it with x\.astype"):
        check_op(ops.relu, jnp.ones(3, jnp.float32))


def test_x64_off_is_named():
    with jax.enable_x64(False):
        with pytest.raises(ValueError, match=r"jax_enable_x64 is off.*jax\.config\.update\('jax_enable_x64', True\)"):
            check_vjp(jnp.sin, jnp.sin, [np.ones(3)])
