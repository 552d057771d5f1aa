"""fdl.recurrent.model: stacked character models (gradients, the loss's reductions), and fit_chars: the character
models train through the same step, scan and loop as every other model (fdl.train)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fdl import optim
from fdl.data.text import book_batch, random_batch
from fdl.recurrent import CharWindows, fit_chars, make_char_train_step, rnn_layer, stack
from fdl.recurrent.model import char_loss, char_loss_fn
from fdl.testing import check_vjp
from fdl.train import TrainState, make_train_step

IDS = np.random.RandomState(0).randint(0, 6, 400).astype(np.int32)
F64 = jnp.float64
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


def test_fit_chars_of_several_seeds_equals_each_seed_alone():
    """Issue 22: the runs of a list of seeds train together (vmap); each equals its own fit_chars to float32
    rounding (XLA may sum a batched product in another order, so the contract here is a tolerance)."""
    tx = optax.chain(optim.clip(2.0), optim.adagrad(0.05))
    kw = dict(steps=8, batch_size=4, sequence_length=7, eval_every=4, valid=(IDS[None, :7], IDS[None, 1:8]),
              log=None)
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
    with pytest.raises(TypeError, match=r"char_loss_fn.*jax.jit\(step\).*25x slower.*make_chunk"):
        make_char_train_step(MODEL, optax.sgd(0.1), 6)  # issue 23 item 7: says the step must be compiled


# ---------------------------------------------------------------- stacked models: both gradient paths

@pytest.mark.parametrize("cells", [("rnn", "lstm"), ("lstm", "lstm"), ("gru", "lstm")])
def test_stacked_model_gradients(cells):
    vocab, T, batch = 6, 7, 3
    model = stack(rnn_layer(5, 4, cells[0]), rnn_layer(5, vocab, cells[1]))
    params = jax.tree.map(lambda a: 3.0 * a, model.init(jax.random.key(1), (vocab,), F64))
    ids = jax.random.randint(jax.random.key(2), (batch, T + 1), 0, vocab)
    states = model.zero_state(F64)

    def loss(grad):
        return lambda p: char_loss(model, p, ids[:, :-1], ids[:, 1:], states, vocab, grad=grad, dtype=F64)[0]

    check_vjp(loss("manual"), loss("autodiff"), (params,))


def test_train_step_manual_equals_autodiff_and_book_sum():
    vocab = 5
    model = stack(rnn_layer(4, 3, "gru"), rnn_layer(4, vocab, "lstm"))
    params = jax.tree.map(lambda a: 3.0 * a, model.init(jax.random.key(5), (vocab,), F64))
    ids = jax.random.randint(jax.random.key(6), (2, 6), 0, vocab)
    out = {}
    for grad in ("manual", "autodiff"):
        step = jax.jit(make_train_step(char_loss_fn(model, vocab, grad=grad, dtype=F64), optax.sgd(0.1)))
        state = TrainState(params, optax.sgd(0.1).init(params), model.zero_state(F64))
        out[grad] = step(state, (ids[:, :-1], ids[:, 1:]), jax.random.key(0))
    for a, b in zip(jax.tree.leaves(out["manual"]), jax.tree.leaves(out["autodiff"]), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)

    def g(reduction):
        return jax.grad(lambda p: char_loss(model, p, ids[:, :-1], ids[:, 1:], model.zero_state(F64), vocab,
                                            reduction=reduction, dtype=F64)[0])(params)
    for a, b in zip(jax.tree.leaves(g("sum")), jax.tree.leaves(g("mean")), strict=True):
        np.testing.assert_allclose(a, 2 * 5 * b, rtol=1e-10, atol=1e-14)
