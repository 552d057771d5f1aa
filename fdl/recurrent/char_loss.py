"""The character model's loss: softmax cross-entropy at every step (book ch. 6: RNNTrainer's loss).

Loss reduction. fdl's :func:`~fdl.losses.softmax_cross_entropy` is the mean over every (example, step).
The book's ch. 6 loss *sums* over the batch and the steps (its gradient is ``softmax - y`` with no ``/ N``),
so its gradients are ``batch * T`` times larger, which matters with element-wise clipping to +/-2 and with
AdaGrad's ``eps``. ``reduction="sum"`` trains on the book's sum (the reported cross-entropy is still per
character); ``reduction="mean"`` on the mean.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from ..losses import softmax_cross_entropy
from ..ops._op import check_grad_mode
from .model import RecurrentModel

REDUCTIONS = ("mean", "sum")


def char_loss(
    model: RecurrentModel,
    params,
    x_ids,
    y_ids,
    states,
    vocab_size: int,
    *,
    grad: str = "manual",
    reduction: str = "mean",
    dtype=jnp.float32,
):
    """``(loss, (cross-entropy per character, next states))`` for integer windows ``x_ids, y_ids`` (batch, T).

    The book's ch. 6 RNNTrainer step's loss (softmax cross-entropy at every step; see the module docstring for
    ``reduction``). The ids are one-hot encoded in ``dtype`` (an id outside ``[0, vocab_size)`` gives a row of
    zeros, unchecked here; :func:`fit_chars` checks its ids). ``loss`` and the cross-entropy are 0-D arrays in
    the computation's dtype; ``states`` is a list as ``model.apply`` returns it.

    Raises:
      ValueError: an unknown ``reduction`` or ``grad``, states or params for another number of layers.
        Errors of the layers' ``apply`` (ValueError / TypeError, prefixed ``layer i (name):``) propagate.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    x = jax.nn.one_hot(x_ids, vocab_size, dtype=dtype)
    y = jax.nn.one_hot(y_ids, vocab_size, dtype=dtype)
    logits, states = model.apply(params, x, states, grad=grad)
    ce = softmax_cross_entropy(logits, y, grad=grad)
    loss = ce * x_ids.size if reduction == "sum" else ce
    return loss, (ce, states)


def char_loss_fn(
    model: RecurrentModel, vocab_size: int, *, grad: str = "manual", reduction: str = "mean", dtype=jnp.float32
) -> Callable:
    """``loss_fn(params, (x_ids, y_ids), key, states) -> (loss, next states)`` for :func:`fdl.train.make_train_step`.

    The layers' start states travel as the train state's ``aux``: each batch starts from the states the
    previous one ended with (batch means of the last states, with no gradient), as the book's layers keep
    ``start_H``. ``x_ids, y_ids``: integer windows ``(batch, T)``; ``reduction`` as in :func:`char_loss`.

    Raises:
      ValueError: at construction, a ``grad`` other than ``"manual"`` / ``"autodiff"`` or an unknown
        ``reduction``; when called, the errors of :func:`char_loss`.
    """
    check_grad_mode(grad)
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")

    def loss_fn(params, batch, key, states):
        loss, (_, states) = char_loss(
            model, params, *batch, states, vocab_size, grad=grad, reduction=reduction, dtype=dtype
        )
        return loss, jax.lax.stop_gradient(states)

    return loss_fn
