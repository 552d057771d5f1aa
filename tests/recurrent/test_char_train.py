"""fdl.recurrent.char_train: fit_chars trains character models through the same step, scan and loop as every
other model (fdl.train): both gradient paths, carried states, several seeds, bad input."""

import jax
import numpy as np
import optax
import pytest

import fdl.recurrent
from fdl import optim
from fdl.recurrent import fit_chars, rnn_layer, stack

IDS = np.random.RandomState(0).randint(0, 6, 400).astype(np.int32)
MODEL = stack(rnn_layer(8, 6, "gru", weight_scale=0.1), rnn_layer(8, 6, "lstm", weight_scale=0.1))


def test_fit_chars_manual_equals_autodiff_and_carries_states():
    tx = optax.chain(optim.clip(2.0), optim.adagrad(0.05))
    runs = {
        g: fit_chars(
            MODEL,
            tx,
            IDS,
            steps=12,
            batch_size=4,
            sequence_length=7,
            eval_every=4,
            seed=1,
            grad=g,
            dtype=np.float64,
            valid=(IDS[None, :7], IDS[None, 1:8]),
            log=None,
        )
        for g in ("manual", "autodiff")
    }
    (sm, hm), (sa, ha) = runs["manual"], runs["autodiff"]
    assert [e["loss"] for e in hm.evals] == pytest.approx([e["loss"] for e in ha.evals], rel=1e-9)
    for a, b in zip(jax.tree.leaves(sm), jax.tree.leaves(sa), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    assert [e["step"] for e in hm.evals] == [4, 8, 12] and hm.best_step == 12
    assert len(hm.train_loss) == 3 and all(np.isfinite(hm.train_loss))
    assert any(np.any(np.asarray(s) != 0) for s in jax.tree.leaves(sm.aux)), "start states were not carried"


def test_fit_chars_of_several_seeds_equals_each_seed_alone():
    """Issue 22: the runs of a list of seeds train together (vmap); each equals its own fit_chars to float32
    rounding (XLA may sum a batched product in another order, so the contract here is a tolerance)."""
    tx = optax.chain(optim.clip(2.0), optim.adagrad(0.05))
    kw = dict(steps=8, batch_size=4, sequence_length=7, eval_every=4, valid=(IDS[None, :7], IDS[None, 1:8]), log=None)
    state, histories = fit_chars(MODEL, tx, IDS, seed=[1, 2], **kw)
    assert [h.seed for h in histories] == [1, 2] and jax.tree.leaves(state.params)[0].shape[0] == 2
    for r, seed in enumerate([1, 2]):
        one, h = fit_chars(MODEL, tx, IDS, seed=seed, **kw)
        for a, b in zip(jax.tree.leaves(one.params), jax.tree.leaves(state.params), strict=True):
            np.testing.assert_allclose(a, np.asarray(b)[r], rtol=2e-5, atol=1e-6)
        assert [e["loss"] for e in h.evals] == pytest.approx([e["loss"] for e in histories[r].evals], rel=1e-5)


def test_fit_chars_refuses_ids_outside_the_vocabulary():
    bad = IDS.copy()
    bad[10] = 6
    with pytest.raises(ValueError, match=r"train_ids: id 6 at position \(10,\) is outside the vocabulary of 6"):
        fit_chars(MODEL, optax.sgd(0.1), bad, steps=2, batch_size=4, sequence_length=7, log=None)
    with pytest.raises(ValueError, match="fewer than"):
        fit_chars(MODEL, optax.sgd(0.1), IDS[:5], steps=2, batch_size=4, sequence_length=7, log=None)


def test_old_step_factory_names_the_new_one():
    with pytest.raises(AttributeError, match=r"fit_chars.*char_loss_fn.*jax.jit or fdl.train.make_chunk"):
        fdl.recurrent.make_char_train_step  # noqa: B018 (issue 23 item 7: the step must be compiled)
