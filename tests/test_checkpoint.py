"""Checkpoints: exact resume, atomic writes, and clear refusals of files that are not ours."""

import jax
import numpy as np
import pytest

from fdl import checkpoint, dense, fit, serial
from fdl.losses import mean_squared_error
from fdl.optim import momentum
from fdl.train import Checkpoint

RNG = np.random.RandomState(0)
X = RNG.randn(90, 5)
Y = np.sin(X @ RNG.randn(5, 2))
MODEL = serial(dense(7, "tanh", keep_prob=0.9), dense(2))
OPT = momentum(0.05, 0.9, final_lr=0.01, decay_type="exponential")


def train(checkpoint=None, every=1, resume=False, **kw):
    args = dict(epochs=6, eval_every=2, batch_size=16, seed=5, log=None)
    args.update(kw)
    if checkpoint is not None:
        args["plugins"] = [Checkpoint(checkpoint, every=every, resume=resume)]
    return fit(MODEL, mean_squared_error, OPT, X[:70], Y[:70], X[70:], Y[70:], **args)


def assert_same(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_stopped_and_resumed_run_equals_uninterrupted_run(tmp_path):
    path = tmp_path / "run.npz"
    whole, h_whole = train()
    state = _run_until(path, stop_after=3)
    assert state["epoch"] == 3
    resumed, h_resumed = train(checkpoint=path, resume=True)
    assert_same(whole, resumed)
    assert_same(h_whole.opt_state, h_resumed.opt_state)
    assert h_whole.train_loss == h_resumed.train_loss and h_whole.evals == h_resumed.evals


def _run_until(path, stop_after):
    """Simulate an interruption: checkpoint every epoch and raise once epoch ``stop_after`` is saved."""
    real_save = checkpoint.save

    class Interrupted(Exception):
        pass

    def save_then_maybe_stop(*args, **kwargs):
        real_save(*args, **kwargs)
        if kwargs["epoch"] == stop_after:
            raise Interrupted

    checkpoint.save = save_then_maybe_stop
    try:
        with pytest.raises(Interrupted):
            train(checkpoint=path, every=1)
    finally:
        checkpoint.save = real_save
    return checkpoint.load(path, params_like=MODEL.init(jax.random.key(0), (5,)),
                           opt_state_like=OPT(6, 5).init(MODEL.init(jax.random.key(0), (5,))))


def test_checkpoint_of_another_model_is_refused_and_kept(tmp_path):
    path = tmp_path / "run.npz"
    train(epochs=2, checkpoint=path)
    before = path.read_bytes()
    other = serial(dense(9, "tanh"), dense(2))
    with pytest.raises(checkpoint.CheckpointError, match="another model"):
        fit(other, mean_squared_error, OPT, X, Y, epochs=2, batch_size=16, log=None,
            plugins=[Checkpoint(path, resume=True)])
    assert path.read_bytes() == before


@pytest.mark.parametrize("damage", ["truncate", "garbage", "plain_npz"])
def test_damaged_or_foreign_files_give_clear_errors(tmp_path, damage):
    path = tmp_path / "run.npz"
    train(epochs=2, checkpoint=path)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "garbage":
        path.write_bytes(b"not a checkpoint at all")
    else:
        np.savez(path, W=np.ones(3))
    before = path.read_bytes()
    with pytest.raises(checkpoint.CheckpointError, match="not .*fdl checkpoint"):
        train(checkpoint=path, resume=True)
    assert path.read_bytes() == before


def test_failed_write_leaves_previous_checkpoint_and_no_temporary_files(tmp_path, monkeypatch):
    path = tmp_path / "run.npz"
    train(epochs=2, checkpoint=path)
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        train(epochs=2, checkpoint=path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["run.npz"]


def test_missing_file_starts_fresh(tmp_path):
    fresh, _ = train(checkpoint=tmp_path / "new.npz", resume=True)
    whole, _ = train()
    assert_same(fresh, whole)
