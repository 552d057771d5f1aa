"""fdl.recurrent.model: stacked layers as one model, both gradient paths through the character loss."""

import jax
import jax.numpy as jnp
import pytest

from fdl.recurrent import char_loss, rnn_layer, stack
from fdl.testing import check_vjp

F64 = jnp.float64


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
