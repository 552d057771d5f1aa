"""The character models train through the same step, scan and loop as every other model (fdl.train)."""

import jax
import numpy as np
import optax
import pytest

from fdl import optim
from fdl.data.text import book_batch, random_batch
from fdl.recurrent import CharWindows, fit_chars, make_char_train_step, rnn_layer, stack

IDS = np.random.RandomState(0).randint(0, 6, 400).astype(np.int32)
MODEL = stack(rnn_layer(8, 6, "gru", weight_scale=0.1), rnn_layer(8, 6, "lstm", weight_scale=0.1))


@pytest.mark.parametrize("batches", ["random", "book"])
def test_char_windows_are_the_text_helpers_windows(batches):
    sampler, key = CharWindows(len(IDS), 4, 7, batches), jax.random.key(3)
    starts, _, last = sampler.plan(IDS, key, 0, 5, 3, False)
    assert last is None
    for i, k in enumerate(range(5, 8)):
        want = (book_batch(IDS, k, 4, 7) if batches == "book" else
                random_batch(IDS, jax.random.fold_in(key, k), 4, 7))
        got = sampler.batch(IDS, starts[i])
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a, b)


def test_fit_chars_manual_equals_autodiff_and_carries_states():
    tx = optax.chain(optim.clip(2.0), optim.adagrad(0.05))
    runs = {g: fit_chars(MODEL, tx, IDS, steps=12, batch_size=4, sequence_length=7, eval_every=4, seed=1,
                         grad=g, dtype=np.float64, valid=(IDS[None, :7], IDS[None, 1:8]), log=None)
            for g in ("manual", "autodiff")}
    (sm, hm), (sa, ha) = runs["manual"], runs["autodiff"]
    assert [e["loss"] for e in hm.evals] == pytest.approx([e["loss"] for e in ha.evals], rel=1e-9)
    for a, b in zip(jax.tree.leaves(sm), jax.tree.leaves(sa), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    assert [e["step"] for e in hm.evals] == [4, 8, 12] and hm.best_step == 12
    assert len(hm.train_loss) == 3 and all(np.isfinite(hm.train_loss))
    assert any(np.any(np.asarray(s) != 0) for s in jax.tree.leaves(sm.aux)), "start states were not carried"


def test_fit_chars_refuses_ids_outside_the_vocabulary():
    bad = IDS.copy()
    bad[10] = 6
    with pytest.raises(ValueError, match=r"train_ids: id 6 at position \(10,\) is outside the vocabulary of 6"):
        fit_chars(MODEL, optax.sgd(0.1), bad, steps=2, batch_size=4, sequence_length=7, log=None)
    with pytest.raises(ValueError, match="fewer than"):
        fit_chars(MODEL, optax.sgd(0.1), IDS[:5], steps=2, batch_size=4, sequence_length=7, log=None)


def test_old_step_factory_names_the_new_one():
    with pytest.raises(TypeError, match="char_loss_fn"):
        make_char_train_step(MODEL, optax.sgd(0.1), 6)
