"""fdl.metrics: accuracy on one-hot rows and on labels; an empty batch is refused; non-finite predictions (and
targets that name no class) are never scored, under jit, lax.map and vmap too."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fdl import metrics
from fdl.metrics import accuracy


def test_accuracy_metric():
    pred = jnp.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert float(accuracy(pred, jnp.array([[0, 1], [1, 0], [1, 0]]))) == pytest.approx(2 / 3)
    assert float(accuracy(pred, jnp.array([1, 0, 0]))) == pytest.approx(2 / 3)


@pytest.mark.parametrize("metric", [metrics.mae, metrics.rmse, metrics.accuracy])
def test_metrics_refuse_an_empty_batch(metric):
    with pytest.raises(ValueError, match="empty batch"):
        metric(jnp.ones((0, 3)), jnp.ones((0, 3)))


# ---------------------------------------------------------------- non-finite predictions are never scored

NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("jit", [False, True])
def test_accuracy_of_a_nan_row_is_nan(jit):
    # Before: 0.5, the NaN row counted as class 0 (jnp.argmax of NaN), beside a NaN loss.
    pred = jnp.array([[0.1, 0.9], [NAN, NAN]])
    acc = jax.jit(accuracy) if jit else accuracy
    assert np.isnan(float(acc(pred, jnp.array([1, 0]))))
    assert np.isnan(float(acc(pred, jnp.array([[0.0, 1.0], [1.0, 0.0]]))))
    assert np.isnan(float(acc(jnp.array([[0.1, 0.9], [NAN, 5.0]]), jnp.array([1, 1]))))  # one NaN in the row


@pytest.mark.parametrize(
    "pred,target",
    [
        ([[INF, INF, 0.0]], [0]),  # several classes at +inf: an overflowed layer, no argmax
        ([[-INF, -INF, -INF]], [0]),  # every class masked
        ([[1.0, 2.0, 3.0]], [[NAN, 0.0, 1.0]]),  # a target row that names no class
    ],
)
def test_accuracy_of_rows_that_name_no_class_is_nan(pred, target):
    for acc in (accuracy, jax.jit(accuracy)):
        assert np.isnan(float(acc(jnp.array(pred), jnp.array(target))))


def test_accuracy_orders_single_infinite_scores():
    # -inf masks a class (as softmax_cross_entropy takes it); a single +inf is the row's certain class.
    pred = jnp.array([[-INF, 0.0, 1.0], [INF, 0.0, -INF], [0.0, INF, 2.0]])
    assert float(accuracy(pred, jnp.array([2, 0, 2]))) == pytest.approx(2 / 3)
    assert float(jax.jit(accuracy)(pred, jnp.array([2, 0, 1]))) == 1.0


def test_accuracy_refuses_labels_out_of_range_and_gives_nan_under_jit():
    # Before: a label 3 for 3 classes was silently counted wrong; the loss refuses it (NaN under jit).
    pred = jnp.array([[0.1, 0.9, 0.0], [0.8, 0.2, 0.0]])
    with pytest.raises(
        ValueError,
        match=r"accuracy: class labels must lie in \[0, 3\) for 3 scores per row, "
        r"got \[3\]",
    ):
        accuracy(pred, jnp.array([1, 3]))
    with pytest.raises(ValueError, match=r"got \[1.5\]"):
        accuracy(pred, jnp.array([1.5, 0.0]))
    assert float(accuracy(pred, jnp.array([1.0, 0.0]))) == 1.0  # floating labels with integral values
    assert np.isnan(float(jax.jit(accuracy)(pred, jnp.array([1, 3]))))
    assert np.isnan(float(jax.jit(accuracy)(pred, jnp.array([-1, 0]))))


def test_accuracy_refuses_targets_for_other_examples_or_classes():
    with pytest.raises(ValueError, match=r"predictions \(3, 4\) and targets \(3, 5\) do not describe the same"):
        accuracy(jnp.ones((3, 4)), jnp.ones((3, 5)))  # before: argmax of both compared, silently
    with pytest.raises(ValueError, match="do not describe the same examples"):
        accuracy(jnp.ones((3, 4)), jnp.ones(2, jnp.int32))


METRICS = {"mae": metrics.mae, "rmse": metrics.rmse, "accuracy": metrics.accuracy}


@pytest.mark.parametrize("name", sorted(METRICS))
def test_a_nan_prediction_makes_that_runs_metric_nan_under_jit_map_and_vmap(name):
    """Stacked predictions of two runs, one of them NaN on one example: its metric is NaN, the other's is not."""
    metric = METRICS[name]
    pred = jnp.array([[[0.2, 0.8], [0.9, 0.1], [0.4, 0.6]]] * 2).at[1, 1, 0].set(NAN)
    y = jnp.array([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    expected = float(metric(pred[0], y))
    for values in (
        jax.jit(lambda p: jax.lax.map(lambda q: metric(q, y), p))(pred),
        jax.jit(jax.vmap(metric, in_axes=(0, None)))(pred, y),
    ):
        assert float(values[0]) == pytest.approx(expected) and np.isnan(float(values[1]))


@pytest.mark.parametrize("metric", [metrics.mae, metrics.rmse])
def test_regression_metrics_of_infinite_predictions_are_infinite(metric):
    assert float(jax.jit(metric)(jnp.array([[1.0], [INF]]), jnp.array([[0.0], [0.0]]))) == INF
    assert float(jax.jit(metric)(jnp.array([[1.0], [-INF]]), jnp.array([[0.0], [0.0]]))) == INF
    assert np.isnan(float(metric(jnp.array([[1.0], [2.0]]), jnp.array([[0.0], [NAN]]))))
