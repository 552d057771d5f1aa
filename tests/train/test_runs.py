"""Many runs as one program (issue 22) and the trainer's edges (issue 23): seeds and sweeps trained together,
each run stopping on its own; non-finite evaluations; resumes; bounded caches."""

import gc
import os
import re
import subprocess
import sys
import weakref

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fdl
from fdl import checkpoint, dense, fit, serial
from fdl.losses import mean_squared_error, softmax_cross_entropy
from fdl.metrics import accuracy
from fdl.optim import momentum
from fdl.train import Checkpoint, EarlyStopping, Plugin, TrainState
from fdl.train.fit import CACHE_SIZE
from tests.helpers import regression_data

RNG = np.random.default_rng(0)
X = RNG.normal(size=(300, 12)).astype(np.float32)
Y = np.eye(3, dtype=np.float32)[np.argmax(X @ RNG.normal(size=(12, 3)) + RNG.normal(size=(300, 3)), 1)]
XT, YT = X[:90] + 0.1, Y[:90]
MODEL = serial(dense(16, "tanh", weight_init="glorot", keep_prob=0.8), dense(3, weight_init="glorot"))
OPT = momentum(0.1, 0.9, final_lr=0.05, decay_type="exponential")
KW = dict(epochs=12, eval_every=2, batch_size=33, metrics={"accuracy": accuracy}, log=None)


def leaves_equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def run(r, tree):
    return jax.tree.map(lambda a: np.asarray(a)[r], tree)


def test_three_seeds_together_equal_three_fits_bitwise_each_stopping_on_its_own():
    """A dropout, momentum-with-decay model: 3 runs as one program are bitwise the 3 one-run fits (CPU), with
    their own early stopping (the runs stop at different evaluations and keep their own best params)."""
    params, histories = fit(MODEL, softmax_cross_entropy, OPT, X, Y, XT, YT, seed=[1, 2, 3], **KW)
    assert [h.seed for h in histories] == [1, 2, 3]
    assert jax.tree.leaves(params)[0].shape[0] == 3
    best = []
    for r, seed in enumerate([1, 2, 3]):
        p, h = fit(MODEL, softmax_cross_entropy, OPT, X, Y, XT, YT, seed=seed, **KW)
        assert leaves_equal(p, run(r, params)), f"seed {seed}"
        assert h.evals == histories[r].evals and h.train_loss == histories[r].train_loss
        assert h.best_epoch == histories[r].best_epoch and (h.stopped is None) == (histories[r].stopped is None)
        if h.stopped:
            assert histories[r].stopped == f"seed {seed}: {h.stopped}"
        assert leaves_equal(h.state.opt_state, histories[r].state.opt_state)
        assert h.state.epoch == histories[r].state.epoch
        best.append(h.best_epoch)
    assert len(set(best)) > 1, f"the runs should stop at different evaluations here, got {best}"
    assert any(h.stopped for h in histories)


def test_stacked_params_predict_evaluate_save_and_load(tmp_path):
    params, histories = fit(MODEL, softmax_cross_entropy, OPT, X, Y, XT, YT, seed=[4, 5], **KW)
    pred = fdl.predict(MODEL, params, XT)
    assert pred.shape == (2, 90, 3)
    for r in range(2):
        np.testing.assert_array_equal(pred[r], fdl.predict(MODEL, run(r, params), XT))
    scores = fdl.evaluate(MODEL, softmax_cross_entropy, params, XT, YT, {"accuracy": accuracy})
    assert [s["loss"] for s in scores] == pytest.approx([h.evals[-1]["loss"] for h in histories]) or any(
        h.stopped for h in histories
    )
    path = checkpoint.save_params(tmp_path / "runs.npz", params)
    loaded = checkpoint.load_params(path)
    np.testing.assert_array_equal(fdl.predict(MODEL, loaded, XT), pred)
    with pytest.raises(ValueError, match="params do not fit the model"):
        fdl.predict(MODEL, [{"W": jnp.ones((3, 12, 4)), "B": jnp.ones((3, 1, 4))}] * 2, XT)


def test_a_sweep_of_learning_rates_one_run_overflowing_stops_alone():
    sgd = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)
    logs = []
    params, histories = fit(
        MODEL,
        softmax_cross_entropy,
        sgd,
        X,
        Y,
        seed=[7],
        epochs=3,
        batch_size=30,
        sweep={"learning_rate": [0.01, 1e38]},
        log=logs.append,
    )
    ok, bad = histories
    assert ok.hyperparams == {"learning_rate": 0.01} and ok.stopped is None and len(ok.train_loss) == 3
    assert bad.stopped.startswith("seed 7, learning_rate 1e+38: ") and "became" in bad.stopped
    assert bad.best_epoch < 3 and bad.stopped in logs
    assert np.all(np.isfinite(jax.tree.leaves(params)[0]))
    alone, h = fit(
        MODEL,
        softmax_cross_entropy,
        optax.inject_hyperparams(optax.sgd)(learning_rate=0.01),
        X,
        Y,
        seed=7,
        epochs=3,
        batch_size=30,
        log=None,
    )
    np.testing.assert_allclose(jax.tree.leaves(alone)[0], jax.tree.leaves(params)[0][0], rtol=1e-6)
    with pytest.raises(TypeError, match=r"cannot sweep \['learning_rate'\].*inject_hyperparams"):
        fit(
            MODEL,
            softmax_cross_entropy,
            optax.sgd(0.1),
            X,
            Y,
            seed=1,
            epochs=1,
            log=None,
            sweep={"learning_rate": [0.1, 0.2]},
        )


def test_a_non_finite_evaluation_stops_the_run_and_is_never_the_best():
    """Issue 23 item 1: test inputs that overflow the model's outputs make the evaluation loss inf."""
    X, y, Xt, yt = regression_data()
    model = serial(dense(4), dense(1))
    for early_stopping in (True, False):
        logs = []
        params, h = fit(
            model,
            mean_squared_error,
            optax.sgd(0.01),
            X,
            y,
            Xt * 1e30,
            yt,
            epochs=5,
            eval_every=1,
            batch_size=16,
            seed=0,
            early_stopping=early_stopping,
            log=logs.append,
        )
        assert h.stopped.startswith("Validation loss became inf after epoch 1") and logs[-1] == h.stopped
        assert "before any finite evaluation" in h.stopped and h.best_epoch == 0 and len(h.evals) == 1
        initial = model.init(jax.random.split(jax.random.key(0))[0], (X.shape[1],))
        assert leaves_equal(params, initial)


def test_early_stopping_value_under_vmap():
    state = TrainState({"W": jnp.zeros(2)}, None)
    es = jax.tree.map(lambda a: jnp.stack([a, a, a]), EarlyStopping.start(state))
    states = TrainState({"W": jnp.arange(6.0).reshape(3, 2)}, None, None, jnp.zeros(3, jnp.int32))
    update = jax.vmap(lambda e, loss, s: e.update(loss, s, 1, enabled=True))
    es = update(es, jnp.array([1.0, jnp.nan, 2.0]), states)
    assert es.active.tolist() == [True, False, True] and es.best_at.tolist() == [1, 0, 1]
    np.testing.assert_array_equal(es.best.params["W"], [[0, 1], [0, 0], [4, 5]])
    es = update(es, jnp.array([0.5, 0.1, 2.0]), states)  # run 1 stopped: frozen; run 2 did not improve: stops
    assert es.active.tolist() == [True, False, False] and es.best_loss.tolist() == [0.5, np.inf, 2.0]
    assert es.stopped_early.tolist() == [False, True, True]


def test_several_seeds_checkpointed_resume_bitwise(tmp_path):
    path = tmp_path / "runs.npz"

    class Kill(Plugin):
        def after_chunk(self, run):
            if run.done == 5:
                raise KeyboardInterrupt
            return run

    whole, hw = fit(MODEL, softmax_cross_entropy, OPT, X, Y, XT, YT, seed=[1, 2], **KW)
    with pytest.raises(KeyboardInterrupt):
        fit(MODEL, softmax_cross_entropy, OPT, X, Y, XT, YT, seed=[1, 2], plugins=[Checkpoint(path), Kill()], **KW)
    resumed, hr = fit(
        MODEL, softmax_cross_entropy, OPT, X, Y, XT, YT, seed=[1, 2], plugins=[Checkpoint(path, resume=True)], **KW
    )
    assert leaves_equal(whole, resumed)
    assert [h.evals for h in hw] == [h.evals for h in hr] and [h.stopped for h in hw] == [h.stopped for h in hr]
    assert [h.best_epoch for h in hw] == [h.best_epoch for h in hr]
    with pytest.raises(checkpoint.CheckpointError, match=r"checkpoint of 2 run\(s\)"):
        fit(MODEL, softmax_cross_entropy, OPT, X, Y, XT, YT, seed=[1, 3], plugins=[Checkpoint(path, resume=True)], **KW)


def test_a_checkpoint_past_the_end_or_of_another_batch_size_is_refused(tmp_path):
    """Issue 23 items 3 and 6: both were a bare IndexError or a silent wrong position."""
    path = tmp_path / "run.npz"
    kw = dict(batch_size=30, seed=1, log=None, early_stopping=False)
    fit(MODEL, softmax_cross_entropy, OPT, X, Y, epochs=4, plugins=[Checkpoint(path)], **kw)
    before = path.read_bytes()
    with pytest.raises(checkpoint.CheckpointError, match=r"after epoch 4, past the end of this run \(epoch 2\)"):
        fit(MODEL, softmax_cross_entropy, OPT, X, Y, epochs=2, plugins=[Checkpoint(path, resume=True)], **kw)
    with pytest.raises(checkpoint.CheckpointError, match=r"written with batch_size 30, this run has batch_size 20"):
        fit(
            MODEL,
            softmax_cross_entropy,
            OPT,
            X,
            Y,
            epochs=6,
            plugins=[Checkpoint(path, resume=True)],
            **{**kw, "batch_size": 20},
        )
    assert path.read_bytes() == before


def test_plugin_hooks_return_the_run():
    class Forgetful(Plugin):
        def setup(self, run):
            pass

    with pytest.raises(TypeError, match=r"Forgetful.setup must return the run"):
        fit(MODEL, softmax_cross_entropy, OPT, X, Y, epochs=1, log=None, plugins=[Forgetful()])


def test_bad_seeds_and_float64_without_x64():
    for seed, error, match in (
        ([1, 1], ValueError, "repeat"),
        ([], TypeError, "non-empty"),
        (1.5, TypeError, "seed must be"),
        (["a"], TypeError, "seed must be"),
    ):
        with pytest.raises(error, match=match):
            fit(MODEL, softmax_cross_entropy, OPT, X, Y, epochs=1, seed=seed, log=None)
    # the test process runs with x64 on (conftest): a fresh process has it off, as a new user's does
    code = (
        "import jax.numpy as jnp, numpy as np, fdl\n"
        "try:\n    fdl.fit(fdl.serial(fdl.dense(1)), fdl.mean_squared_error, fdl.optim.sgd(0.1), np.ones((4, 2)), "
        "np.ones((4, 1)), epochs=1, dtype=jnp.float64, log=None)\n"
        "except ValueError as e:\n    print(e)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert re.search(r"dtype float64 needs 64-bit floats.*jax_enable_x64", out.stdout), out.stdout + out.stderr


def test_compiled_once_per_process_and_models_not_kept_alive():
    """Issue 21: a second fit of the same configuration compiles nothing; issue 23 item 5: the caches that
    hold models are bounded, so a sweep over many models does not keep them all."""
    model = serial(dense(5, "tanh"), dense(3))
    _, h1 = fit(model, softmax_cross_entropy, OPT, X, Y, XT, YT, seed=1, **KW)
    _, h2 = fit(model, softmax_cross_entropy, OPT, X, Y, XT, YT, seed=2, **KW)
    assert h1.compilations == 1 and h2.compilations == 0
    refs = []
    for width in range(2, 14):
        m = serial(dense(width, "tanh"), dense(3))
        p, _ = fit(m, softmax_cross_entropy, optax.sgd(0.1), X, Y, XT, YT, epochs=1, eval_every=1, log=None)
        fdl.evaluate(m, softmax_cross_entropy, p, XT, YT)
        refs.append(weakref.ref(m.apply))
        del m, p
    gc.collect()
    assert sum(r() is not None for r in refs) <= CACHE_SIZE


def test_conv_runs_on_the_cpu_train_one_after_another_bitwise():
    """XLA:CPU runs a convolution vmapped over its weights many times slower, so several runs of a model with
    an XLA convolution train one after another inside the program (lax.map): each still its own fit, bitwise."""
    from fdl import conv2d, flatten
    from fdl.train.fit import _convolves_on_cpu

    images = RNG.normal(size=(40, 2, 6, 6)).astype(np.float32)
    labels = Y[:40]
    model = serial(conv2d(3, 3, "tanh"), flatten(), dense(3))
    assert _convolves_on_cpu(model, images.shape[1:], jnp.float32) == (jax.default_backend() == "cpu")
    kw = dict(epochs=2, batch_size=10, log=None)
    params, _ = fit(model, softmax_cross_entropy, optax.sgd(0.1), images, labels, seed=[1, 2], **kw)
    for r, seed in enumerate([1, 2]):
        alone, _ = fit(model, softmax_cross_entropy, optax.sgd(0.1), images, labels, seed=seed, **kw)
        assert leaves_equal(alone, run(r, params))
