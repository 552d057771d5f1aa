"""fdl.metrics: accuracy on one-hot rows and on labels; an empty batch is refused."""

import jax.numpy as jnp
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
