"""fdl.checkpoint.save_params / load_params: params alone, for inference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fdl import checkpoint, dense, flatten, serial
from fdl.checkpoint import CheckpointError, load_params, save_params


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
    with pytest.raises(CheckpointError, match=r"params of another model \(not the structure of like=\): "
                                              r"params/1/B is float32\[1, 4\] in the file, expected float32\[1, 5\]"):
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
    with pytest.raises(CheckpointError, match="format 'fdl-checkpoint-1', expected 'fdl-params-1' "
                                              r"\(a full checkpoint: use fdl.checkpoint.load\)"):
        load_params(tmp_path / "full.npz")
    save_params(tmp_path / "params.npz", params)
    with pytest.raises(CheckpointError, match=r"params alone: use fdl.checkpoint.load_params"):
        checkpoint.load(tmp_path / "params.npz", params_like=params, opt_state_like=())
