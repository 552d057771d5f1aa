"""The character model's evaluation: cross-entropy per character from carried states, and gradient sizes.

The book's ch. 6 validation loss, but the categorical cross-entropy (erratum 1) and per character.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

from .char_loss import char_loss
from .model import RecurrentModel


@functools.lru_cache(maxsize=8)
def char_score(model: RecurrentModel, vocab_size: int) -> Callable:
    """``score(state, (x_ids, y_ids)) -> {"loss": cross-entropy per character}`` from the carried states."""

    def score(state, valid):
        return {"loss": char_loss(model, state.params, *valid, state.aux, vocab_size)[1][0]}

    return score


def make_char_eval(model: RecurrentModel, vocab_size: int) -> Callable:
    """Jitted ``(params, states, x_ids, y_ids) -> cross-entropy per character`` (nats) from ``states``.

    The book's ch. 6 validation loss, but the categorical cross-entropy (erratum 1) and per character.
    ``x_ids, y_ids``: integer (batch, T); returns a 0-D array in the computation's dtype. Raises, when
    called, the errors of :func:`char_loss`.
    """

    def evaluate(params, states, x_ids, y_ids):
        return char_loss(model, params, x_ids, y_ids, states, vocab_size)[1][0]

    return jax.jit(evaluate)


def gradient_norms(
    model: RecurrentModel, params, x_ids, y_ids, states, vocab_size: int, grad: str = "manual"
) -> Sequence[dict]:
    """The largest absolute gradient of every parameter, per layer (to show every weight learns).

    Shows erratum 2 fixed: with the book's GRU every weight but ``W_v, B_v`` gets exactly zero gradient (book
    ch. 6). ``x_ids, y_ids``: integer (batch, T). Returns one dict per layer, ``{param name: float}``.
    Raises the errors of :func:`char_loss`.
    """
    grads = jax.grad(lambda p: char_loss(model, p, x_ids, y_ids, states, vocab_size, grad=grad)[0])(params)
    return [{k: float(jnp.max(jnp.abs(g))) for k, g in layer.items()} for layer in grads]
