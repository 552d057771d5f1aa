"""fdl.checkpoint: checkpoints (exact resume through the Checkpoint plugin, atomic writes, clear refusals of files
that are not ours, each kind of damage) and params files (save_params / load_params: params alone, for inference)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fdl import checkpoint, dense, fit, flatten, serial
from fdl.checkpoint import CheckpointError, load_params, save_params
from fdl.losses import mean_squared_error
from fdl.optim import momentum
from fdl.train import Checkpoint
from tests.helpers import assert_untouched, fit_tiny, snapshot

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
    return checkpoint.load(
        path,
        params_like=MODEL.init(jax.random.key(0), (5,)),
        opt_state_like=OPT(6, 5).init(MODEL.init(jax.random.key(0), (5,))),
    )


def test_checkpoint_of_another_model_is_refused_and_kept(tmp_path):
    path = tmp_path / "run.npz"
    train(epochs=2, checkpoint=path)
    before = path.read_bytes()
    other = serial(dense(9, "tanh"), dense(2))
    with pytest.raises(checkpoint.CheckpointError, match="another model"):
        fit(
            other,
            mean_squared_error,
            OPT,
            X,
            Y,
            epochs=2,
            batch_size=16,
            log=None,
            plugins=[Checkpoint(path, resume=True)],
        )
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


# ---------------------------------------------------------------- every kind of damage (the bad-input catalogue's)


def _checkpoint(tmp_path):
    path = tmp_path / "run.npz"
    fit_tiny(checkpoint=path)
    return path


CORRUPTIONS = {
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[:300]), "not a readable fdl checkpoint .*truncated"),
    "garbage": (lambda p: p.write_bytes(b"\x00" * 64), "not a readable fdl checkpoint"),
    "empty": (lambda p: p.write_bytes(b""), "not a readable fdl checkpoint"),
    "plain npz": (lambda p: np.savez(p, W=np.ones(3)), "not an fdl checkpoint .*fdl-checkpoint-1"),
    "another model": (
        lambda p: checkpoint.save(
            p,
            params=serial(dense(5), dense(1), dense(1)).init(jax.random.key(0), (4,)),
            opt_state=(),
            key=jax.random.key(0),
            epoch=1,
        ),
        r"checkpoint is of another model or optimizer: unexpected params/2/. \(0 missing, 2 unexpected entries\)",
    ),
    "another shape": (
        lambda p: checkpoint.save(
            p,
            params=serial(dense(5, "tanh"), dense(1)).init(jax.random.key(0), (3,)),
            opt_state=(),
            key=jax.random.key(0),
            epoch=1,
        ),
        r"params/0/W is float32\[3, 5\] in the file, expected float32\[4, 5\]",
    ),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_corrupt_checkpoint(tmp_path, case):
    path = _checkpoint(tmp_path)
    damage, message = CORRUPTIONS[case]
    damage(path)
    before = snapshot(tmp_path)
    with pytest.raises(checkpoint.CheckpointError, match=message) as info:
        fit_tiny(epochs=3, checkpoint=path, resume=True)
    assert str(path) in str(info.value)
    assert_untouched(tmp_path, before)


# ---------------------------------------------------------------- params files: save_params / load_params


def _model():
    model = serial(flatten(), dense(4, "tanh"), dense(2))
    return model, model.init(jax.random.key(0), (2, 3))


def test_round_trip_without_like_gives_the_same_tree_and_predictions(tmp_path):
    model, params = _model()
    path = save_params(tmp_path / "sub" / "weights.npz", params)
    assert path == tmp_path / "sub" / "weights.npz" and not list(path.parent.glob("*.tmp"))
    loaded = load_params(path)
    assert jax.tree.structure(loaded) == jax.tree.structure(params)
    x = jnp.asarray(np.random.RandomState(0).randn(5, 2, 3), jnp.float32)
    np.testing.assert_array_equal(model.apply(loaded, x), model.apply(params, x))


def test_round_trip_with_like_keeps_tuples_and_dtypes(tmp_path):
    params = {"cell": ({"W": jnp.ones((2, 3), jnp.float64)}, jnp.arange(3)), "empty": ()}
    save_params(tmp_path / "p.npz", params)
    loaded = load_params(tmp_path / "p.npz", like=params)
    assert jax.tree.structure(loaded) == jax.tree.structure(params)
    assert loaded["cell"][0]["W"].dtype == jnp.float64 and loaded["cell"][1].tolist() == [0, 1, 2]
    plain = load_params(tmp_path / "p.npz")
    assert isinstance(plain["cell"], list) and plain["empty"] == []


def test_a_mismatched_tree_is_refused_with_the_first_difference(tmp_path):
    _, params = _model()
    save_params(tmp_path / "p.npz", params)
    other = serial(flatten(), dense(5, "tanh"), dense(2)).init(jax.random.key(0), (2, 3))
    with pytest.raises(
        CheckpointError,
        match=r"params of another model \(not the structure of like=\): "
        r"params/1/B is float32\[1, 4\] in the file, expected float32\[1, 5\]",
    ):
        load_params(tmp_path / "p.npz", like=other)
    with pytest.raises(CheckpointError, match="missing params/0/W"):
        load_params(tmp_path / "p.npz", like=[{"W": jnp.ones(2)}])


def test_other_files_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="no such params file"):
        load_params(tmp_path / "none.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="not a readable fdl params file"):
        load_params(tmp_path / "junk.npz")
    _, params = _model()
    checkpoint.save(tmp_path / "full.npz", params=params, opt_state=(), key=jax.random.key(0), epoch=1)
    with pytest.raises(
        CheckpointError,
        match="format 'fdl-checkpoint-1', expected 'fdl-params-1' "
        r"\(a full checkpoint: use fdl.checkpoint.load\)",
    ):
        load_params(tmp_path / "full.npz")
    save_params(tmp_path / "params.npz", params)
    with pytest.raises(CheckpointError, match=r"params alone: use fdl.checkpoint.load_params"):
        checkpoint.load(tmp_path / "params.npz", params_like=params, opt_state_like=())
