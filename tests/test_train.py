"""The trainer: one compilation, reproducibility, early stopping, non-finite losses and bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fdl import dense, fit, serial
from fdl.losses import mean_squared_error
from fdl.metrics import accuracy, mae, rmse
from fdl.optim import sgd
from fdl.train import Progress, TrainState


def data(n=103, features=4, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, features)
    y = np.tanh(X @ rng.randn(features, 1)) + 0.1 * rng.randn(n, 1)
    return X[:80], y[:80], X[80:], y[80:]


MODEL = serial(dense(6, "sigmoid", keep_prob=0.9), dense(1))


def run(**kw):
    args = dict(epochs=6, eval_every=2, batch_size=16, seed=3, log=None)
    args.update(kw)
    return fit(MODEL, mean_squared_error, sgd(0.05), *data(), **args)


def test_compiled_once_with_ragged_last_batch():
    _, history = run(epochs=5, early_stopping=False)   # 80 = 5 * 16; use 13 for a ragged batch
    assert history.compilations == 1
    _, history = run(epochs=5, batch_size=13, early_stopping=False)
    assert history.compilations == 1 and len(history.train_loss) == 5


def test_same_seed_is_bitwise_identical_and_other_seed_differs():
    a, _ = run()
    b, _ = run()
    c, _ = run(seed=4)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0]["W"], c[0]["W"])


def test_manual_and_autodiff_training_agree():
    a, _ = run(dtype=jnp.float64)
    b, _ = run(dtype=jnp.float64, grad="autodiff")
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-12)


def test_early_stopping_returns_the_params_of_the_last_good_evaluation(capsys):
    # A learning rate this large makes the validation loss rise at some evaluation.
    X, y, Xt, yt = data()
    logs = []
    params, history = fit(MODEL, mean_squared_error, sgd(3.0), X, y, Xt, yt, epochs=40, eval_every=1,
                          batch_size=8, seed=0, log=logs.append)
    assert history.stopped.startswith("Loss increased after epoch")
    assert logs[-1] == history.stopped
    best = history.best_epoch
    assert f"using the model from epoch {best}" in history.stopped
    losses = [e["loss"] for e in history.evals]
    assert losses[-1] >= min(losses[:-1])
    replay, _ = fit(MODEL, mean_squared_error, sgd(3.0), X, y, epochs=best, batch_size=8, seed=0, log=None)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(replay), strict=True):
        np.testing.assert_array_equal(a, b)


def test_restart_false_continues_training():
    p1, h1 = run(epochs=3, early_stopping=False)
    p2, _ = fit(MODEL, mean_squared_error, sgd(0.05), *data(), epochs=1, batch_size=16, seed=3, restart=False,
                state=h1.state, log=None)
    assert not np.array_equal(p1[0]["W"], p2[0]["W"])
    with pytest.raises(ValueError, match="restart=False"):
        run(restart=False)


def test_non_finite_loss_stops_and_returns_last_good_params():
    X, y, Xt, yt = data()
    logs = []
    params, history = fit(MODEL, mean_squared_error, optax.sgd(1e6), X, y * 1e6, epochs=50, batch_size=16,
                          seed=0, log=logs.append)
    assert "training loss became" in history.stopped and "epoch" in history.stopped and "step" in history.stopped
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(params))
    assert logs == [history.stopped]


def test_metrics_are_logged():
    logs = []
    _, history = run(metrics={"mae": mae, "rmse": rmse}, log=logs.append, early_stopping=False)
    assert {"epoch", "loss", "mae", "rmse"} <= set(history.evals[0])
    assert "mae" in logs[0]


def test_accuracy_metric():
    pred = jnp.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert float(accuracy(pred, jnp.array([[0, 1], [1, 0], [1, 0]]))) == pytest.approx(2 / 3)
    assert float(accuracy(pred, jnp.array([1, 0, 0]))) == pytest.approx(2 / 3)


@pytest.mark.parametrize("kwargs,match", [
    (dict(batch_size=0), "batch_size must be a positive integer"),
    (dict(epochs=0), "epochs must be a positive integer"),
    (dict(eval_every=-1), "eval_every"),
    (dict(grad="finite"), "grad must be one of"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        run(**kwargs)


def test_bad_data():
    X, y, Xt, yt = data()
    with pytest.raises(ValueError, match="X has 80 examples but y has 79"):
        fit(MODEL, mean_squared_error, sgd(), X, y[:-1], log=None)
    with pytest.raises(ValueError, match="no examples"):
        fit(MODEL, mean_squared_error, sgd(), X[:0], y[:0], log=None)
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        fit(MODEL, mean_squared_error, sgd(), bad, y, log=None)
    with pytest.raises(ValueError, match="differ in shape"):
        fit(MODEL, mean_squared_error, sgd(), X, y, Xt[:, :3], yt, log=None)
    with pytest.raises(ValueError, match=r"layer 0 .*input has 4 features but W expects 3"):
        fit(serial(dense(2), dense(1)), mean_squared_error, sgd(), X, y, log=None, state=TrainState([
            {"W": jnp.ones((3, 2)), "B": jnp.ones((1, 2))}, {"W": jnp.ones((2, 1)), "B": jnp.ones((1, 1))}], None),
            restart=False)


def test_progress_lines_without_tqdm(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_tqdm(name, *args, **kwargs):
        if name.startswith("tqdm"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tqdm)
    monkeypatch.setenv("FDL_PROGRESS_NOTED", "0")  # the note is said once per process
    logs = []
    run(epochs=2, early_stopping=False, plugins=[Progress()], log=logs.append)
    assert [line.split(":")[0] for line in logs if line.startswith("epoch")] == ["epoch 1/2", "epoch 2/2"]
    assert any("tqdm is not installed" in line for line in logs)


@pytest.mark.parametrize("old,new", [
    (dict(checkpoint="run.npz"), r"plugins=\[fdl.train.Checkpoint\(path"),
    (dict(checkpoint_every=2), r"Checkpoint\(path, every=N\)"),
    (dict(resume=True), r"Checkpoint\(path, resume=True\)"),
    (dict(devices="all"), r"plugins=\[fdl.train.DataParallel\(devices\)\]"),
    (dict(progress=True), r"plugins=\[fdl.train.Progress\(\)\]"),
    (dict(params=[]), r"state=fdl.train.TrainState\(params, opt_state\)"),
    (dict(opt_state=()), r"restart=False, state="),
    (dict(eval_batch_size=100), r"fdl.train.evaluate\(model, loss, params, X, y, batch_size=N\)"),
])
def test_fdl_0_1_keywords_name_their_replacement(old, new):
    with pytest.raises(TypeError, match=r"no longer takes .*" + new):
        run(**old)
    with pytest.raises(TypeError, match="unexpected keyword argument 'epoch'"):
        run(epoch=3)


def test_old_train_step_spellings_name_the_new_ones():
    import fdl.train
    with pytest.raises(TypeError, match=r"make_train_step\(fdl.train.model_loss\(model, loss, grad=g\), optimizer\)"):
        fdl.train.make_train_step(MODEL, mean_squared_error, sgd(0.1), grad="manual")
    with pytest.raises(AttributeError, match=r"make_chunk\(step, ShuffledEpochs"):
        fdl.train.make_train_epoch  # noqa: B018
    with pytest.raises(TypeError, match=r"make_train_step: optimizer is optax.adam itself.*pass optax.adam\(0.001\)"):
        fdl.train.make_train_step(fdl.train.model_loss(MODEL, mean_squared_error), optax.adam)
    with pytest.raises(TypeError, match="must be an optax GradientTransformation"):
        fdl.train.make_train_step(fdl.train.model_loss(MODEL, mean_squared_error), "sgd")


def test_test_inputs_come_in_pairs():
    X, y, Xt, yt = data()
    for partial in ((Xt, None), (None, yt)):
        with pytest.raises(ValueError, match="was given without .*pass both"):
            fit(MODEL, mean_squared_error, sgd(), X, y, *partial, log=None)


def test_params_that_overflow_while_the_loss_is_finite_stop_training():
    # Boston-like regression at a learning rate of 1e37, one step per epoch: the first update overflows the
    # params to inf although the loss of that step was finite. fit must not return (or keep) them.
    from fdl.data import boston_split
    X, _, y, _ = boston_split()
    logs = []
    params, history = fit(serial(dense(1)), mean_squared_error, optax.sgd(1e37), X, y, epochs=3,
                          batch_size=len(X), seed=0, log=logs.append)
    assert history.stopped.startswith("params or optimizer state became non-finite (overflow) at epoch 1")
    assert "training loss stayed finite" in history.stopped and "lower the learning rate" in history.stopped
    assert history.best_epoch == 0 and history.train_loss == []
    initial = serial(dense(1)).init(jax.random.split(jax.random.key(0))[0], (13,))
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(initial), strict=True):
        assert np.all(np.isfinite(a))
        np.testing.assert_array_equal(a, b)


def test_eval_every_steps_evaluates_within_an_epoch():
    logs = []
    _, history = run(epochs=2, eval_every_steps=2, early_stopping=False, log=logs.append)  # 80 rows / 16 = 5 steps
    assert [e["step"] for e in history.evals] == [2, 4, 5, 7, 9, 10]
    assert [e["epoch"] for e in history.evals] == [1, 1, 1, 2, 2, 2]
    assert logs[0].startswith("Validation loss after 2 steps is")
    assert history.compilations == 2  # chunks of 2 steps, and the last chunk of 1 step + the ragged batch
    whole, _ = run(epochs=2, early_stopping=False)
    chunked, _ = run(epochs=2, eval_every_steps=2, early_stopping=False)
    for a, b in zip(jax.tree.leaves(whole), jax.tree.leaves(chunked), strict=True):
        np.testing.assert_array_equal(a, b)  # where evaluations happen does not change the training


def test_integer_labels_are_kept_as_integers():
    from fdl.losses import softmax_cross_entropy
    X, _, _, _ = data()
    labels = (X[:, 0] > 0).astype(np.int64)
    try:
        params, history = fit(serial(dense(2)), softmax_cross_entropy, sgd(0.1), X, labels, X, labels,
                              epochs=2, eval_every=1, batch_size=16, log=None, metrics={"accuracy": accuracy})
    except (ValueError, TypeError) as e:  # a loss that refuses integer labels must say what to do
        assert "one_hot" in str(e)
    else:
        assert 0.0 <= history.evals[-1]["accuracy"] <= 1.0
