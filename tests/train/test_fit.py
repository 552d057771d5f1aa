"""fdl.train.fit: one compilation, reproducibility, early stopping, non-finite losses, the data's checks (shapes,
dtypes, NaN, labels), fdl 0.1's keywords, and other bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fdl
from fdl import checkpoint, dense, fit, losses, serial
from fdl.losses import mean_squared_error
from fdl.metrics import accuracy, mae, rmse
from fdl.optim import sgd
from fdl.train import Checkpoint, TrainState
from tests.helpers import (
    REGRESSION_MODEL,
    TINY_MODEL,
    TINY_X,
    TINY_Y,
    assert_refused_before_writing,
    fit_regression,
    fit_tiny,
    regression_data,
)


def test_compiled_once_with_ragged_last_batch():
    _, history = fit_regression(epochs=5, early_stopping=False)  # 80 = 5 * 16; use 13 for a ragged batch
    assert history.compilations == 1
    _, history = fit_regression(epochs=5, batch_size=13, early_stopping=False)
    assert history.compilations == 1 and len(history.train_loss) == 5


def test_same_seed_is_bitwise_identical_and_other_seed_differs():
    a, _ = fit_regression()
    b, _ = fit_regression()
    c, _ = fit_regression(seed=4)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0]["W"], c[0]["W"])


def test_manual_and_autodiff_training_agree():
    a, _ = fit_regression(dtype=jnp.float64)
    b, _ = fit_regression(dtype=jnp.float64, grad="autodiff")
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-12)


def test_early_stopping_returns_the_params_of_the_last_good_evaluation(capsys):
    # A learning rate this large makes the validation loss rise at some evaluation.
    X, y, Xt, yt = regression_data()
    logs = []
    params, history = fit(
        REGRESSION_MODEL,
        mean_squared_error,
        sgd(0.5),
        X,
        y,
        Xt,
        yt,
        epochs=40,
        eval_every=1,
        batch_size=8,
        seed=0,
        log=logs.append,
    )
    assert history.stopped.startswith("Loss increased after epoch")
    assert logs[-1] == history.stopped
    best = history.best_epoch
    assert f"using the model from epoch {best}" in history.stopped
    losses = [e["loss"] for e in history.evals]
    assert losses[-1] >= min(losses[:-1])
    replay, _ = fit(REGRESSION_MODEL, mean_squared_error, sgd(0.5), X, y, epochs=best, batch_size=8, seed=0, log=None)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(replay), strict=True):
        np.testing.assert_array_equal(a, b)


def test_continuing_a_run_equals_one_longer_run_bitwise():
    """Issue 23 item 4: continued epochs are numbered on from state.epoch, so they draw new shuffles and dropout
    masks; three continued epochs equal one 3-epoch run (an optimizer without per-epoch decay)."""
    model = serial(dense(8, "tanh", keep_prob=0.8), dense(1))
    data = regression_data()[:2]
    kw = dict(epochs=1, batch_size=16, seed=3, early_stopping=False, log=None)
    p, h = fit(model, mean_squared_error, optax.sgd(0.05, momentum=0.9), *data, **kw)
    first = p
    for _ in range(2):
        p, h = fit(model, mean_squared_error, optax.sgd(0.05, momentum=0.9), *data, state=h.state, **kw)
    assert h.state.epoch == 3 and h.best_epoch == 3
    once, _ = fit(model, mean_squared_error, optax.sgd(0.05, momentum=0.9), *data, **{**kw, "epochs": 3})
    for a, b in zip(jax.tree.leaves(p), jax.tree.leaves(once), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0]["W"], p[0]["W"])


def test_restart_is_gone():  # state=history.state continues a run (CHANGELOG.md's migration table)
    with pytest.raises(TypeError, match=r"fit\(\) got an unexpected keyword argument 'restart'"):
        fit_regression(restart=False)


def test_non_finite_loss_stops_and_returns_last_good_params():
    X, y, Xt, yt = regression_data()
    logs = []
    params, history = fit(
        REGRESSION_MODEL,
        mean_squared_error,
        optax.sgd(1e6),
        X,
        y * 1e6,
        epochs=50,
        batch_size=16,
        seed=0,
        log=logs.append,
    )
    assert "training loss became" in history.stopped and "epoch" in history.stopped and "step" in history.stopped
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(params))
    assert logs == [history.stopped]


def test_metrics_are_logged():
    logs = []
    _, history = fit_regression(metrics={"mae": mae, "rmse": rmse}, log=logs.append, early_stopping=False)
    assert {"epoch", "loss", "mae", "rmse"} <= set(history.evals[0])
    assert "mae" in logs[0]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(batch_size=0), "batch_size must be a positive integer"),
        (dict(epochs=0), "epochs must be a positive integer"),
        (dict(eval_every=-1), "eval_every"),
        (dict(grad="finite"), "grad must be one of"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit_regression(**kwargs)


def test_bad_data():
    X, y, Xt, yt = regression_data()
    with pytest.raises(ValueError, match="X has 80 examples but y has 79"):
        fit(REGRESSION_MODEL, mean_squared_error, sgd(), X, y[:-1], log=None)
    with pytest.raises(ValueError, match="no examples"):
        fit(REGRESSION_MODEL, mean_squared_error, sgd(), X[:0], y[:0], log=None)
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        fit(REGRESSION_MODEL, mean_squared_error, sgd(), bad, y, log=None)
    with pytest.raises(ValueError, match="differ in shape"):
        fit(REGRESSION_MODEL, mean_squared_error, sgd(), X, y, Xt[:, :3], yt, log=None)
    with pytest.raises(ValueError, match=r"params do not fit the model .* for inputs \(4,\)"):
        fit(
            serial(dense(2), dense(1)),
            mean_squared_error,
            sgd(),
            X,
            y,
            log=None,
            state=TrainState(
                [{"W": jnp.ones((3, 2)), "B": jnp.ones((1, 2))}, {"W": jnp.ones((2, 1)), "B": jnp.ones((1, 1))}], None
            ),
        )


@pytest.mark.parametrize(
    "old",
    [  # CHANGELOG.md's migration table names their replacements
        dict(checkpoint="run.npz"),
        dict(checkpoint_every=2),
        dict(resume=True),
        dict(devices="all"),
        dict(progress=True),
        dict(params=[]),
        dict(opt_state=()),
        dict(eval_batch_size=100),
    ],
)
def test_fdl_0_1_keywords_are_unknown(old):
    with pytest.raises(TypeError, match=rf"fit\(\) got an unexpected keyword argument '{next(iter(old))}'"):
        fit_regression(**old)
    with pytest.raises(TypeError, match="unexpected keyword argument 'epoch'"):
        fit_regression(epoch=3)


def test_test_inputs_come_in_pairs():
    X, y, Xt, yt = regression_data()
    for partial in ((Xt, None), (None, yt)):
        with pytest.raises(ValueError, match="was given without .*pass both"):
            fit(REGRESSION_MODEL, mean_squared_error, sgd(), X, y, *partial, log=None)


def test_params_that_overflow_while_the_loss_is_finite_stop_training():
    # Boston-like regression at a learning rate of 1e37, one step per epoch: the first update overflows the
    # params to inf although the loss of that step was finite. fit must not return (or keep) them.
    from fdl.data import boston_split

    X, _, y, _ = boston_split()
    logs = []
    params, history = fit(
        serial(dense(1)),
        mean_squared_error,
        optax.sgd(1e37),
        X,
        y,
        epochs=3,
        batch_size=len(X),
        seed=0,
        log=logs.append,
    )
    assert history.stopped.startswith("params or optimizer state became non-finite (overflow) at epoch 1")
    assert "training loss stayed finite" in history.stopped and "lower the learning rate" in history.stopped
    assert history.best_epoch == 0 and history.train_loss == []
    initial = serial(dense(1)).init(jax.random.split(jax.random.key(0))[0], (13,))
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(initial), strict=True):
        assert np.all(np.isfinite(a))
        np.testing.assert_array_equal(a, b)


def test_eval_every_steps_evaluates_within_an_epoch():
    logs = []
    _, history = fit_regression(
        epochs=2, eval_every_steps=2, early_stopping=False, log=logs.append
    )  # 80 rows / 16 = 5 steps
    assert [e["step"] for e in history.evals] == [2, 4, 5, 7, 9, 10]
    assert [e["epoch"] for e in history.evals] == [1, 1, 1, 2, 2, 2]
    assert logs[0].startswith("Validation loss after 2 steps is")
    assert history.compilations == 2  # chunks of 2 steps, and the last chunk of 1 step + the ragged batch
    whole, _ = fit_regression(epochs=2, early_stopping=False)
    chunked, _ = fit_regression(epochs=2, eval_every_steps=2, early_stopping=False)
    for a, b in zip(jax.tree.leaves(whole), jax.tree.leaves(chunked), strict=True):
        np.testing.assert_array_equal(a, b)  # where evaluations happen does not change the training


def test_integer_labels_are_kept_as_integers():
    from fdl.losses import softmax_cross_entropy

    X, _, _, _ = regression_data()
    labels = (X[:, 0] > 0).astype(np.int64)
    try:
        params, history = fit(
            serial(dense(2)),
            softmax_cross_entropy,
            sgd(0.1),
            X,
            labels,
            X,
            labels,
            epochs=2,
            eval_every=1,
            batch_size=16,
            log=None,
            metrics={"accuracy": accuracy},
        )
    except (ValueError, TypeError) as e:  # a loss that refuses integer labels must say what to do
        assert "one_hot" in str(e)
    else:
        assert 0.0 <= history.evals[-1]["accuracy"] <= 1.0


# ---------------------------------------------------------------- the bad-input catalogue's cases of fit


def test_fit_with_an_uncalled_optax_constructor_says_to_call_it():
    X = jnp.asarray(np.random.RandomState(0).randn(8, 3))
    y = X.sum(axis=1, keepdims=True)
    with pytest.raises(TypeError, match=r"pass optax\.adam\(0\.001\), not optax\.adam"):
        fdl.fit(fdl.serial(fdl.dense(1)), fdl.mean_squared_error, optax.adam, X, y, epochs=1)


WRONG_SHAPES = {
    "fit X/y lengths": (lambda: fit_tiny(TINY_X, TINY_Y[:-1]), "X has 64 examples but y has 63"),
    "fit test shape": (
        lambda: fit_tiny(TINY_X, TINY_Y, TINY_X[:, :3], TINY_Y),
        r"test examples \(3,\)/\(1,\) differ in shape from training",
    ),
    "fit y per example": (
        lambda: fit_tiny(TINY_X, TINY_Y[:, 0]),
        r"output shape \(1,\) per example, got \(\) .* reshape the targets to \(64, 1\)",
    ),
    "fit X rank": (
        lambda: fit_tiny(TINY_X[:, :, None], TINY_Y),
        r"expects inputs of shape \(features,\) per example, got \(4, 1\)",
    ),
}


@pytest.mark.parametrize("case", sorted(WRONG_SHAPES))
def test_wrong_shapes_and_ranks(case):
    call, message = WRONG_SHAPES[case]
    with pytest.raises(ValueError, match=message):
        call()


def test_integer_and_float16_data_are_cast_by_fit():
    """fit trains in its ``dtype`` (float32): integer and float16 data give exactly the run on the same values."""
    ints = np.round(3 * TINY_X).astype(np.int64)
    a, _ = fit_tiny(ints, TINY_Y)
    b, _ = fit_tiny(ints.astype(np.float64), TINY_Y)
    half = TINY_X.astype(np.float16)
    c, _ = fit_tiny(half, TINY_Y.astype(np.float16))
    d, _ = fit_tiny(half.astype(np.float64), TINY_Y.astype(np.float16).astype(np.float64))
    for p, q in ((a, b), (c, d)):
        for u, v in zip(jax.tree.leaves(p), jax.tree.leaves(q), strict=True):
            assert u.dtype == jnp.float32
            np.testing.assert_array_equal(u, v)
    for bad in (TINY_X > 0, TINY_X.astype(str)):
        with pytest.raises(TypeError, match=f"X must be numeric, got dtype {bad.dtype}"):
            fit_tiny(bad, TINY_Y)


def test_fit_rejects_a_non_float_training_dtype():
    with pytest.raises(TypeError, match=r"fit: dtype must be a floating-point type .*got int32"):
        fit_tiny(dtype=jnp.int32)


@pytest.mark.parametrize("where, what", [("X", "X"), ("y", "y"), ("X_test", "X"), ("y_test", "y")])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_data_is_refused_before_training(tmp_path, where, what, value):
    arrays = {
        "X": TINY_X[:48].copy(),
        "y": TINY_Y[:48].copy(),
        "X_test": TINY_X[48:].copy(),
        "y_test": TINY_Y[48:].copy(),
    }
    arrays[where][3, 0] = value
    path = tmp_path / "run.npz"
    split = "test" if where.endswith("test") else "training"
    with pytest.raises(ValueError, match=f"fit \\({split} data\\): {what} contains NaN or Inf; clean the data"):
        fit_tiny(arrays["X"], arrays["y"], arrays["X_test"], arrays["y_test"], checkpoint=path)
    assert not path.exists() and not list(tmp_path.iterdir())


def test_labels_instead_of_one_hot_targets():
    """fit's cases: integer (n,) targets are regression values to MSE (reshape them, issue 23 item 7), class
    labels to cross-entropy (a model with one output cannot take 2 classes); the losses' and the vocabulary's
    are in their test files under the same name."""
    labels = (TINY_X[:, 0] > 0).astype(np.int64)
    with pytest.raises(
        ValueError,
        match=r"fit: mean_squared_error takes targets .* reshape the targets to "
        r"\(\d+, 1\): y.reshape\(-1, 1\).astype\('float32'\)",
    ):
        fit_tiny(TINY_X, labels)
    with pytest.raises(ValueError, match=r"fit: integer class labels must lie in \[0, 1\) .* got labels from 0 to 1"):
        fit(TINY_MODEL, losses.softmax_cross_entropy, sgd(), TINY_X, labels, log=None)


EMPTY = {
    "fit training": (lambda: fit_tiny(TINY_X[:0], TINY_Y[:0]), r"fit \(training data\): no examples"),
    "fit test": (lambda: fit_tiny(TINY_X, TINY_Y, TINY_X[:0], TINY_Y[:0]), r"fit \(test data\): no examples"),
}


@pytest.mark.parametrize("case", sorted(EMPTY))
def test_empty_data(case):
    call, message = EMPTY[case]
    with pytest.raises(ValueError, match=message):
        call()


HYPERPARAMETERS = {
    "fit batch_size 0": (
        lambda ck: fit_tiny(batch_size=0, checkpoint=ck, resume=True),
        "batch_size must be a positive",
    ),
    "fit batch_size 2.5": (lambda ck: fit_tiny(batch_size=2.5, checkpoint=ck), "batch_size must be a positive integer"),
    "fit epochs 0": (lambda ck: fit_tiny(epochs=0, checkpoint=ck, resume=True), "epochs must be a positive integer"),
    "fit eval_every -1": (lambda ck: fit_tiny(eval_every=-1, checkpoint=ck), "eval_every must be a positive integer"),
}


@pytest.mark.parametrize("case", sorted(HYPERPARAMETERS))
def test_non_positive_hyperparameters(tmp_path, case):
    """Refused when given, before anything is read or written: an existing checkpoint is left as it was."""
    assert_refused_before_writing(tmp_path, *HYPERPARAMETERS[case])


UNKNOWN_NAMES = {
    "grad mode": (lambda: fit_tiny(grad="numeric"), r"grad must be one of \('manual', 'autodiff'\), got 'numeric'"),
}


@pytest.mark.parametrize("case", sorted(UNKNOWN_NAMES))
def test_unknown_names(case):
    call, message = UNKNOWN_NAMES[case]
    with pytest.raises(ValueError, match=message):
        call()


# ---------------------------------------------------------------- a non-finite loss mid-training


def poisoned_sgd(lr: float, poison_step: int) -> optax.GradientTransformation:
    """SGD whose update number ``poison_step`` (0-based, counted over the whole run) is NaN: the params become
    NaN after it, so the *next* step's loss is the first non-finite one. Deterministic, unlike a diverging rate."""
    inner = optax.sgd(lr)

    def init(params):
        return inner.init(params), jnp.zeros((), jnp.int32)

    def update(grads, state, params=None):
        inner_state, count = state
        updates, inner_state = inner.update(grads, inner_state, params)
        updates = jax.tree.map(lambda u: jnp.where(count == poison_step, jnp.nan, u), updates)
        return updates, (inner_state, count + 1)

    return optax.GradientTransformation(init, update)


def fit_poisoned(epochs, checkpoint=None, **kw):
    # 64 examples, batch 16: 4 steps per epoch. Update 9 is NaN, so global step 10 = epoch 3, step 3 fails.
    options = dict(epochs=epochs, batch_size=16, seed=0, early_stopping=False, eval_every=1)
    options.update(kw)
    if checkpoint is not None:
        options["plugins"] = [Checkpoint(checkpoint)]
    return fit(
        TINY_MODEL,
        losses.mean_squared_error,
        poisoned_sgd(0.05, poison_step=9),
        TINY_X[:64],
        TINY_Y[:64],
        TINY_X[:8],
        TINY_Y[:8],
        **options,
    )


def test_non_finite_loss_stops_naming_epoch_and_step_and_returns_last_good_params():
    logs = []
    params, history = fit_poisoned(6, log=logs.append)
    assert history.stopped == (
        "training loss became nan at epoch 3, step 3; returning the params from the end of epoch 2"
    )
    assert logs[-1] == history.stopped and history.best_epoch == 2
    assert len(history.train_loss) == 2 and [e["epoch"] for e in history.evals] == [1, 2]
    good, good_history = fit_poisoned(2, log=None)  # the same run, stopped by hand after epoch 2
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(good), strict=True):
        assert np.all(np.isfinite(a))
        np.testing.assert_array_equal(a, b)
    for a, b in zip(jax.tree.leaves(history.opt_state), jax.tree.leaves(good_history.opt_state), strict=True):
        np.testing.assert_array_equal(a, b)


def test_non_finite_loss_leaves_the_last_good_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "run.npz"
    written = []
    real_save = checkpoint.save

    def recording_save(*args, **kwargs):
        out = real_save(*args, **kwargs)
        written.append((kwargs["epoch"], path.read_bytes()))
        return out

    monkeypatch.setattr(checkpoint, "save", recording_save)
    params, history = fit_poisoned(6, log=None, checkpoint=path)
    assert "at epoch 3, step 3" in history.stopped
    assert [epoch for epoch, _ in written] == [1, 2]
    assert path.read_bytes() == written[-1][1]  # the failing epoch wrote nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.npz"]  # and left no temporary file
    like = TINY_MODEL.init(jax.random.key(0), (4,))
    state = checkpoint.load(path, params_like=like, opt_state_like=poisoned_sgd(0.05, 9).init(like))
    assert state["epoch"] == 2
    for a, b in zip(jax.tree.leaves(state["params"]), jax.tree.leaves(params), strict=True):
        np.testing.assert_array_equal(a, b)
