"""fdl.losses: hand-written gradients, stability, erratum 1, infinite logits (masking), degenerate shapes and integer
labels in both gradient modes, property tests, and bad input."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fdl import losses, metrics
from fdl.losses import get_loss, mean_squared_error, softmax_cross_entropy
from fdl.testing import check_op
from tests.helpers import normal
from tests.strategies import PROPERTY, assert_vjps_agree, call, draw, floats, seed, targets

MODES = ("manual", "autodiff")
INF = float("inf")
INFINITE_LOGITS = st.one_of(st.sampled_from((-np.inf, np.inf)), floats(5.0))


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


# ---------------------------------------------------------------- infinite logits (both gradient modes)


def value_and_grad(loss, z, y, mode):
    return jax.value_and_grad(lambda v: loss(v, y, grad=mode))(z)


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


# ---------------------------------------------------------------- degenerate shapes, integer labels and targets


def test_single_class_column_is_refused_with_the_binary_recipe():
    # Before: loss 0.0 and gradient 0 (softmax of one logit is 1), training silently did nothing.
    with pytest.raises(ValueError, match=r"single class column.*dense\(2\).*fdl\.data\.one_hot\(labels, 2\)"):
        softmax_cross_entropy(jnp.array([[0.3], [2.0]]), jnp.array([[1.0], [0.0]]))
    with pytest.raises(ValueError, match="single class column"):
        metrics.accuracy(jnp.ones((4, 1)), jnp.ones((4, 1)))


@pytest.mark.parametrize(
    "loss,p,y,match",
    [
        (softmax_cross_entropy, jnp.ones((0, 3)), jnp.ones((0, 3)), "non-empty batch"),
        (softmax_cross_entropy, jnp.ones((2, 0)), jnp.ones((2, 0)), "non-empty batch"),
        (softmax_cross_entropy, jnp.ones((2, 3)), jnp.ones((3, 2)), "must have the same shape"),
        (softmax_cross_entropy, jnp.ones(3), jnp.ones(3), "2-D"),
        (mean_squared_error, jnp.ones((0, 1)), jnp.ones((0, 1)), "non-empty batch"),
        (mean_squared_error, jnp.ones((3, 0)), jnp.ones((3, 0)), "non-empty batch"),
        (mean_squared_error, jnp.ones(()), jnp.ones(()), "non-empty batch"),
        (mean_squared_error, jnp.ones((3, 1)), jnp.ones(3), "must have the same shape"),
    ],
)
@pytest.mark.parametrize("mode", MODES)
def test_degenerate_shapes_are_refused(loss, p, y, match, mode):
    with pytest.raises(ValueError, match=match):
        loss(p, y, grad=mode)


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


def test_integer_targets_get_a_float0_gradient():
    p, y = jnp.array([[1.0], [2.0]]), jnp.array([[1], [4]])
    assert float(mean_squared_error(p, y)) == pytest.approx((0 + 4) / 2)
    np.testing.assert_allclose(jax.grad(mean_squared_error)(p, y), [[0.0], [-2.0]])


# ---------------------------------------------------------------- property tests (tests/strategies.py)


@PROPERTY
@given(
    st.data(),
    st.sampled_from(((1, 2), (3, 4), (8, 10), (2, 3, 5))),
    st.sampled_from((5.0, 1e2, 1e4)),
    st.sampled_from(("one_hot", "probabilities", "weights")),
)
def test_losses(data, shape, bound, kind):
    """mean_squared_error (both reductions) and softmax_cross_entropy, logits up to 1e4 (a naive softmax overflows)."""
    p, y = draw(data, shape), draw(data, shape)
    assert_vjps_agree(
        {
            "mean_squared_error(over=batch)": (call(losses.mean_squared_error), (p, y), 2),
            "mean_squared_error(over=elements)": (call(losses.mean_squared_error, over="elements"), (p, y), 2),
            "softmax_cross_entropy": (
                call(losses.softmax_cross_entropy),
                (draw(data, shape, bound), targets(data, shape, kind)),
                2,
            ),
        },
        seed(data),
    )


@PROPERTY
@given(
    st.data(), st.sampled_from(((1, 2), (3, 4), (2, 3, 5))), st.sampled_from(("one_hot", "probabilities", "weights"))
)
def test_softmax_cross_entropy_at_infinite_logits(data, shape, kind):
    """Logits of -inf (masking) and +inf drawn often: both paths agree, infinities included, and nothing is NaN.

    A -inf logit with target 0 is masked (0 log 0 = 0); +inf logits share their row's probability (gradient 0
    there); a target on a class of probability 0 gives +inf. See fdl.losses.softmax_cross_entropy.
    """
    z = draw(data, shape, elements=INFINITE_LOGITS)
    assert_vjps_agree(
        {
            "softmax_cross_entropy (+-inf logits)": (
                call(losses.softmax_cross_entropy),
                (z, targets(data, shape, kind)),
                2,
            )
        },
        seed(data),
    )


# ---------------------------------------------------------------- the bad-input catalogue's cases

WRONG_SHAPES = {
    "mse shapes": (
        lambda: losses.mean_squared_error(jnp.zeros((4, 1)), jnp.zeros((4,))),
        r"mean_squared_error: predictions and targets must have the same shape, got \(4, 1\) and \(4,\)",
    ),
    "softmax rank": (
        lambda: losses.softmax_cross_entropy(jnp.zeros(3), jnp.zeros(3)),
        r"softmax_cross_entropy logits: expected a 2-D array \(batch, classes\), got shape \(3,\)",
    ),
}


@pytest.mark.parametrize("case", sorted(WRONG_SHAPES))
def test_wrong_shapes_and_ranks(case):
    call, message = WRONG_SHAPES[case]
    with pytest.raises(ValueError, match=message):
        call()


def test_labels_instead_of_one_hot_targets():
    """The losses' cases; fit's and the vocabulary's are in their test files under the same name."""
    z = jnp.zeros((4, 3))
    # integer class labels are accepted (as accuracy accepts them): the same loss as one-hot rows
    assert float(losses.softmax_cross_entropy(z, jnp.array([0, 1, 2, 1]))) == pytest.approx(math.log(3))
    with pytest.raises(ValueError, match=r"class labels must lie in \[0, 3\) for 3 logits per row, got \[3\]"):
        losses.softmax_cross_entropy(z, jnp.array([0, 1, 3, 1]))
    with pytest.raises(ValueError, match=r"integer class labels must have shape \(4,\).*fdl\.data\.one_hot"):
        losses.softmax_cross_entropy(z, jnp.array([[0], [1], [2], [1]]))


EMPTY = {
    "mean_squared_error": (
        lambda: losses.mean_squared_error(jnp.zeros((0, 1)), jnp.zeros((0, 1))),
        r"expected a non-empty batch, got shape \(0, 1\)",
    ),
}


@pytest.mark.parametrize("case", sorted(EMPTY))
def test_empty_data(case):
    call, message = EMPTY[case]
    with pytest.raises(ValueError, match=message):
        call()


def test_softmax_cross_entropy_of_an_empty_batch():
    with pytest.raises(ValueError, match=r"softmax_cross_entropy: expected a non-empty batch, got shape \(0, 3\)"):
        losses.softmax_cross_entropy(jnp.zeros((0, 3)), jnp.zeros((0, 3)))


UNKNOWN_NAMES = {
    "loss lookup": (lambda: losses.get_loss("hinge"), "unknown loss 'hinge'; choose one of"),
    "mse reduction": (
        lambda: losses.mean_squared_error(jnp.ones((2, 1)), jnp.ones((2, 1)), over="mean"),
        "over must be one of",
    ),
}


@pytest.mark.parametrize("case", sorted(UNKNOWN_NAMES))
def test_unknown_names(case):
    call, message = UNKNOWN_NAMES[case]
    with pytest.raises(ValueError, match=message):
        call()


# ---------------------------------------------------------------- non-finite predictions: a NaN loss, never finite

NAN = float("nan")
NAN_TARGETS = {
    "one_hot": jnp.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]),
    "labels": jnp.array([1, 2]),
    "probabilities": jnp.array([[0.2, 0.5, 0.3], [0.1, 0.0, 0.9]]),
}


@pytest.mark.parametrize("row", [[NAN, 0.0, 5.0], [NAN, INF, 0.0], [INF, NAN, 0.0], [NAN, -INF, 0.0], [NAN] * 3])
@pytest.mark.parametrize("kind", sorted(NAN_TARGETS))
@pytest.mark.parametrize("mode", MODES)
def test_a_nan_logit_gives_a_nan_loss_and_a_nan_row_gradient(row, kind, mode):
    # Before: the loss was NaN, but the manual gradient of [nan, 0, 5] against class 2 was [nan, 1.0, 147.4]
    # (finite entries from an unshifted exp) and autodiff's [nan, 0, -1]: the two modes disagreed.
    z, y = jnp.array([[1.0, 2.0, 0.5], row]), NAN_TARGETS[kind]
    value, g = value_and_grad(softmax_cross_entropy, z, y, mode)
    assert np.isnan(float(value)) and np.isnan(float(jax.jit(lambda v: softmax_cross_entropy(v, y, grad=mode))(z)))
    assert np.all(np.isnan(g[1]))
    # the finite row's gradient is its own: (softmax - y) / N, untouched by the NaN row
    finite = z.at[1].set(0.0)
    np.testing.assert_allclose(g[0], value_and_grad(softmax_cross_entropy, finite, y, mode)[1][0], rtol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_a_nan_prediction_or_target_gives_a_nan_mse(mode):
    p, y = jnp.array([[1.0], [NAN]]), jnp.array([[0.0], [0.0]])
    value, g = value_and_grad(mean_squared_error, p, y, mode)
    assert np.isnan(float(value)) and np.isnan(float(jax.jit(mean_squared_error)(p, y)))
    assert float(g[0, 0]) == 1.0 and np.isnan(float(g[1, 0]))
    assert np.isnan(float(mean_squared_error(y, p, grad=mode)))  # a NaN target too
    assert float(mean_squared_error(jnp.array([[1.0], [INF]]), y, grad=mode)) == INF


@pytest.mark.parametrize("loss", [mean_squared_error, softmax_cross_entropy])
def test_nan_in_one_run_stays_in_that_run_under_lax_map(loss):
    z = jnp.array([[[0.2, 0.8], [0.9, 0.1]]] * 2).at[1, 0, 1].set(NAN)
    y = jnp.array([[0.0, 1.0], [1.0, 0.0]])
    values = jax.jit(lambda s: jax.lax.map(lambda q: loss(q, y), s))(z)
    assert np.isfinite(float(values[0])) and np.isnan(float(values[1]))


# ---------------------------------------------------------------- regression targets that are not the outputs' shape


def test_integer_regression_targets_of_shape_n_are_told_to_reshape_and_cast():
    # Before (inside fit): "integer class labels must lie in [0, 1) for the model's 1 outputs"; mean_squared_error
    # itself named the shapes but not the fix.
    p = jnp.zeros((4, 1))
    with pytest.raises(
        ValueError,
        match=r"got \(4, 1\) and \(4,\); reshape the targets to \(4, 1\): "
        r"y\.reshape\(-1, 1\)\.astype\('float32'\) \(integer targets are regression",
    ):
        mean_squared_error(p, jnp.array([22, 35, 18, 40]))
    with pytest.raises(ValueError, match=r"reshape the targets to \(4, 1\): y\.reshape\(-1, 1\)") as float_case:
        mean_squared_error(p, jnp.array([22.0, 35.0, 18.0, 40.0]))
    assert "astype" not in str(float_case.value)  # float targets: reshape only
    with pytest.raises(ValueError, match=r"got \(4, 2\) and \(4, 3\)") as other:
        mean_squared_error(jnp.zeros((4, 2)), jnp.zeros((4, 3)))
    assert "reshape" not in str(other.value)  # no reshape would do


def test_check_targets_names_the_fix_for_the_loss():
    """fit's check before training (fdl.train calls it): regression targets for MSE, class labels otherwise."""
    y = np.array([22, 35, 18, 40])
    for labels in (y, np.array([0, 1, 1, 0])):  # Boston-like values, and 0/1 values for one sigmoid output
        with pytest.raises(
            ValueError,
            match=r"fit: mean_squared_error takes targets of the model's output shape "
            r"\(1,\) per example, got \(\) \(targets of shape \(4,\)\); reshape the "
            r"targets to \(4, 1\): y\.reshape\(-1, 1\)\.astype\('float32'\)",
        ):
            losses.check_targets(mean_squared_error, (1,), labels)
    losses.check_targets("mse", (1,), y.reshape(-1, 1).astype("float32"))
    losses.check_targets(softmax_cross_entropy, (3,), np.array([0, 2, 1]))
    # the class-label message stays where the targets are class labels: softmax_cross_entropy, or a loss of one's own
    for loss in (softmax_cross_entropy, lambda p, t, grad="manual": jnp.mean(p)):
        with pytest.raises(
            ValueError,
            match=r"fit: integer class labels must lie in \[0, 3\) for the model's 3 "
            r"outputs, got labels from 0 to 3; give the last layer one output",
        ):
            losses.check_targets(loss, (3,), np.array([0, 3, 1]))
