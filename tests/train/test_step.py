"""fdl.train.step: make_train_step's refusals (a model as loss_fn, fdl 0.1's signature, an uncalled optax
constructor, not an optimizer) and the moved make_train_epoch. Its steps train in tests/train/test_fit.py and
tests/recurrent/test_model.py."""

import optax
import pytest

from fdl.losses import mean_squared_error
from fdl.optim import sgd
from tests.helpers import REGRESSION_MODEL


def test_old_train_step_spellings_fail():
    import fdl.train

    with pytest.raises(
        TypeError,
        match=r"make_train_step: loss_fn is a model .*make_train_step\("
        r"fdl.train.model_loss\(model, loss, grad=g\), optimizer\)",
    ):
        fdl.train.make_train_step(REGRESSION_MODEL, sgd(0.1))
    # fdl 0.1's make_train_step(model, loss, optimizer, grad=...): Python's own TypeError
    with pytest.raises(TypeError, match=r"make_train_step\(\) got an unexpected keyword argument 'grad'"):
        fdl.train.make_train_step(REGRESSION_MODEL, mean_squared_error, sgd(0.1), grad="manual")
    with pytest.raises(TypeError, match=r"make_train_step\(\) takes 2 positional arguments but 3 were given"):
        fdl.train.make_train_step(REGRESSION_MODEL, mean_squared_error, sgd(0.1))
    with pytest.raises(AttributeError, match=r"make_chunk\(step, ShuffledEpochs"):
        fdl.train.make_train_epoch  # noqa: B018
    with pytest.raises(TypeError, match=r"make_train_step: optimizer is optax.adam itself.*pass optax.adam\(0.001\)"):
        fdl.train.make_train_step(fdl.train.model_loss(REGRESSION_MODEL, mean_squared_error), optax.adam)
    with pytest.raises(TypeError, match="must be an optax GradientTransformation"):
        fdl.train.make_train_step(fdl.train.model_loss(REGRESSION_MODEL, mean_squared_error), "sgd")
