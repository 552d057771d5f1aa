"""fdl.recurrent.char_loss: the train step through char_loss_fn on both gradient paths, and the book's summed loss."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fdl.recurrent import char_loss, char_loss_fn, rnn_layer, stack
from fdl.train import TrainState, make_train_step

F64 = jnp.float64


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
        return jax.grad(
            lambda p: char_loss(
                model, p, ids[:, :-1], ids[:, 1:], model.zero_state(F64), vocab, reduction=reduction, dtype=F64
            )[0]
        )(params)

    for a, b in zip(jax.tree.leaves(g("sum")), jax.tree.leaves(g("mean")), strict=True):
        np.testing.assert_allclose(a, 2 * 5 * b, rtol=1e-10, atol=1e-14)
