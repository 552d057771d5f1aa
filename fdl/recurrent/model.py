"""Stacked recurrent layers as a character model, its loss and its trainer (book ch. 6: RNNModel, RNNTrainer).

A model is layers in order, each one's ``output_size`` the next one's input; the last one's output is the
logits over the vocabulary at every step, scored with softmax cross-entropy at every step. Its state is a
list, one state per layer, passed in and returned explicitly.

Loss reduction. fdl's :func:`~fdl.losses.softmax_cross_entropy` is the mean over every (example, step).
The book's ch. 6 loss *sums* over the batch and the steps (its gradient is ``softmax - y`` with no ``/ N``),
so its gradients are ``batch * T`` times larger, which matters with element-wise clipping to +/-2 and with
AdaGrad's ``eps``. ``reduction="sum"`` trains on the book's sum (the reported cross-entropy is still per
character); ``reduction="mean"`` on the mean.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..data.text import book_batch, check_ids, random_batch
from ..layers.core import check_layers, init_in_order
from ..losses import softmax_cross_entropy
from ..ops._op import check_grad_mode
from .layers import RecurrentLayer

REDUCTIONS = ("mean", "sum")


class RecurrentModel(NamedTuple):
    """``init(key, (vocab,)) -> [params]``, ``apply(params, x, states, *, grad) -> (y, states)``, ``zero_state()``.

    The book's ch. 6 RNNModel, with its params and states outside it. ``x``: (batch, T, vocab) floating;
    ``y``: (batch, T, last layer's output_size); ``states``: a list, one state per layer (each field
    (1, hidden) or (batch, hidden)). Built by :func:`stack`, which documents the errors ``apply`` raises.
    """

    init: Callable
    apply: Callable
    zero_state: Callable
    layers: tuple
    name: str = "model"

    def __repr__(self) -> str:
        return self.name


def stack(*layers: RecurrentLayer) -> RecurrentModel:
    """Recurrent layers in order (book ch. 6: ``RNNModel(layers=[...])``).

    E.g. ``stack(rnn_layer(256, 128, "rnn"), rnn_layer(256, vocab, "lstm"))``. Params and states are lists,
    one entry per layer. ``init(key, (vocab,), dtype)`` gives params in ``dtype``; ``zero_state(dtype)`` a
    list of zero states of shape (1, hidden); ``apply(params, x, states, *, grad)`` maps x (batch, T, in)
    to ``(y (batch, T, out), next states)``, each next state the batch mean of the last one, (1, hidden).

    Raises:
      ValueError: at construction, no layers; from ``apply``, a ``grad`` other than ``"manual"`` /
        ``"autodiff"``, or params or states for a different number of layers.
      TypeError: at construction, an argument that is not a :class:`~fdl.recurrent.RecurrentLayer`. A
        ValueError or TypeError of a layer's ``apply`` is re-raised as the same type, its message prefixed
        with ``layer i (name):``.
    """
    check_layers(layers, RecurrentLayer, "stack", "a RecurrentLayer (made by rnn_layer)")
    init = init_in_order(layers)

    def zero_state(dtype=jnp.float32):
        return [layer.zero_state(dtype) for layer in layers]

    def apply(params, x, states, *, grad="manual"):
        check_grad_mode(grad)
        if len(params) != len(layers) or len(states) != len(layers):
            raise ValueError(f"stack: the model has {len(layers)} layers, got {len(params)} params and "
                             f"{len(states)} states")
        new_states = []
        for i, (layer, p, s) in enumerate(zip(layers, params, states, strict=True)):
            try:
                x, s = layer.apply(p, x, s, grad=grad)
            except (ValueError, TypeError) as e:
                raise type(e)(f"layer {i} ({layer.name}): {e}") from None
            new_states.append(s)
        return x, new_states

    return RecurrentModel(init, apply, zero_state, tuple(layers), " -> ".join(layer.name for layer in layers))


def char_loss(model: RecurrentModel, params, x_ids, y_ids, states, vocab_size: int, *, grad: str = "manual",
              reduction: str = "mean", dtype=jnp.float32):
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


def char_loss_fn(model: RecurrentModel, vocab_size: int, *, grad: str = "manual", reduction: str = "mean",
                 dtype=jnp.float32) -> Callable:
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
        loss, (_, states) = char_loss(model, params, *batch, states, vocab_size, grad=grad, reduction=reduction,
                                      dtype=dtype)
        return loss, jax.lax.stop_gradient(states)

    return loss_fn


class CharWindows(NamedTuple):
    """A sampler (:mod:`fdl.train.loop`) of ``batch_size`` windows of ``sequence_length`` characters per step
    from a 1-D array of character ids (the ``data``), with their targets shifted by one.

    ``batches="random"``: start positions drawn uniformly by ``jax.random.fold_in(key, step)`` (the same
    windows as :func:`fdl.data.text.random_batch`); ``batches="book"``: the book's consecutive windows
    (:func:`fdl.data.text.book_batch`). ``n`` is the length of the text.

    ``batch(ids, starts)`` returns ``(x_ids, y_ids)``, each (batch_size, sequence_length) in the ids' integer
    dtype. Nothing is checked here (:func:`fit_chars` checks the text's length and ``batches``); any
    ``batches`` other than ``"book"`` draws random windows.
    """

    n: int
    batch_size: int
    sequence_length: int
    batches: str = "random"

    def plan(self, data, key, epoch, start, count: int, ragged: bool):
        steps = start + jnp.arange(count)
        bs, t = self.batch_size, self.sequence_length
        if self.batches == "book":
            per_pass = (self.n - t - bs - 1) // bs + 1
            starts = ((steps % per_pass) * bs)[:, None] + jnp.arange(bs)[None, :]
        else:
            starts = jax.vmap(lambda k: jax.random.randint(jax.random.fold_in(key, k), (bs,), 0, self.n - t))(steps)
        step_key = jax.random.split(key)[1]  # dropout keys, apart from the windows' keys
        return starts, jax.vmap(lambda k: jax.random.fold_in(step_key, k))(steps), None

    def batch(self, ids, starts):
        idx = starts[:, None] + jnp.arange(self.sequence_length)[None, :]
        return ids[idx], ids[idx + 1]


def fit_chars(model: RecurrentModel, optimizer: optax.GradientTransformation, train_ids, *, steps: int,
              batch_size: int = 32, sequence_length: int = 25, batches: str = "random", valid=None,
              eval_every: int = 100, seed: int = 0, grad: str = "manual", reduction: str = "mean",
              dtype=jnp.float32, log=print, plugins=()):
    """Train a character model for ``steps`` steps (book ch. 6: ``RNNTrainer.train``); ``(state, history)``.

    Args:
      model: from :func:`stack`.
      optimizer: an optax transformation (e.g. ``optax.chain(fdl.optim.clip(2.0), fdl.optim.adagrad(0.01))``,
        the book's).
      train_ids: the training text as integer ids ``(n,)`` (``Vocabulary.encode``), all below the vocabulary
        size (the model's last layer's output size); ValueError otherwise.
      steps: training steps (one batch each).
      batch_size: windows per batch.
      sequence_length: characters per window (``T``).
      batches: ``"random"`` or ``"book"`` windows (:class:`CharWindows`).
      valid: ``(x_ids, y_ids)`` validation windows (:func:`fdl.data.text.windows`), evaluated every ``eval_every``
        steps from the carried states; ``history.evals[i]["loss"]`` is the cross-entropy in nats per character.
      eval_every: steps between evaluations (one compiled chunk each).
      seed: params from ``model.init(split(key(seed))[0])``; windows drawn with the other half. A list of
        seeds trains one run per seed, together as one program (stacked params; a list of histories).
      grad: ``"manual"`` (hand-written BPTT) or ``"autodiff"`` (``jax.grad``).
      reduction: ``"mean"`` or the book's ``"sum"`` (:func:`char_loss`).
      dtype: the params' floating-point type.
      log: as :func:`fdl.train.train`.
      plugins: as :func:`fdl.train.train` (e.g. ``[fdl.train.DataParallel("all")]``).

    Returns:
      The final :class:`~fdl.train.TrainState` (``state.aux`` holds the carried states) and the history; for
      a list of seeds, the stacked state (a leading run axis on every leaf) and a list of histories.

    Raises:
      ValueError: ids that are not a 1-D integer array inside the vocabulary, a text too short for one batch,
        an unknown ``batches``, ``grad`` or ``reduction``, or repeated seeds.
      TypeError: a ``seed`` that is neither an int nor a list of ints.
    """
    from ..train import Chunk, History, TrainState, make_chunk, make_train_step, train
    from ..train.fit import seeds_and_sweep
    from ..train.run import init_runs, run_keys, take_run

    vocab_size = model.layers[-1].output_size
    ids = np.asarray(train_ids)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"fit_chars: train_ids must be a 1-D integer array of character ids, got {ids.dtype}"
                         f"{list(ids.shape)}")
    check_ids(ids, vocab_size, "fit_chars: train_ids")
    if batches not in ("random", "book"):
        raise ValueError(f"fit_chars: batches must be 'random' or 'book', got {batches!r}")
    text_check = (lambda: book_batch(ids, 0, batch_size, sequence_length)) if batches == "book" else (
        lambda: random_batch(ids, jax.random.key(0), batch_size, sequence_length))
    text_check()  # the text is long enough for one batch (a clear ValueError otherwise)
    seeds, _, many = seeds_and_sweep(seed, None)
    keys = run_keys(seeds)  # (runs, 2): init, windows
    params = init_runs(lambda k: model.init(k, (vocab_size,), dtype), keys[:, 0])
    zero = jax.tree.map(lambda a: jnp.broadcast_to(a, (len(seeds), *a.shape)), model.zero_state(dtype))
    state = TrainState(params, jax.vmap(optimizer.init)(params), zero, jnp.zeros(len(seeds), jnp.int32))
    sampler = CharWindows(len(ids), batch_size, sequence_length, batches)
    step = make_train_step(char_loss_fn(model, vocab_size, grad=grad, reduction=reduction, dtype=dtype), optimizer)
    schedule = [Chunk(0, s, min(eval_every, steps - s), False, True) for s in range(0, steps, eval_every)]
    evaluate = None
    if valid is not None:
        evaluate = (_char_score(model, vocab_size), tuple(jnp.asarray(v) for v in valid))
    histories = [History(seed=s) for s in seeds]
    state, histories = train(lambda shard: make_chunk(step, sampler, shard=shard, runs=True), state,
                             jnp.asarray(ids), schedule, key=keys[:, 1], evaluate=evaluate, log=log, plugins=plugins,
                             batch_size=batch_size, unit="step", histories=histories,
                             labels=[f"seed {s}" for s in seeds] if many else None)
    state = state._replace(epoch=np.zeros(len(seeds), int))
    if many:
        return state._replace(epoch=0), list(histories)
    return take_run(state, 0)._replace(epoch=0), histories[0]


@functools.lru_cache(maxsize=8)
def _char_score(model: RecurrentModel, vocab_size: int) -> Callable:
    """``score(state, (x_ids, y_ids)) -> {"loss": cross-entropy per character}`` from the carried states."""

    def score(state, valid):
        return {"loss": char_loss(model, state.params, *valid, state.aux, vocab_size)[1][0]}

    return score


def make_char_train_step(*args, **kwargs):
    """Removed in fdl 0.2 (raises TypeError): see :func:`char_loss_fn` and :func:`fit_chars`."""
    raise TypeError("fdl.recurrent.make_char_train_step was removed in fdl 0.2; train with "
                    "fdl.recurrent.fit_chars, or build the step as fdl.train.make_train_step("
                    "fdl.recurrent.char_loss_fn(model, vocab_size, grad=g, reduction=r), optimizer) and compile it: "
                    "jax.jit(step) to call it step by step (unjitted in a Python loop it runs about 25x slower), "
                    "or fdl.train.make_chunk(step, sampler) to run many steps as one program; the start states go "
                    "in TrainState.aux; data parallelism is the fdl.train.DataParallel plugin")


def make_char_eval(model: RecurrentModel, vocab_size: int) -> Callable:
    """Jitted ``(params, states, x_ids, y_ids) -> cross-entropy per character`` (nats) from ``states``.

    The book's ch. 6 validation loss, but the categorical cross-entropy (erratum 1) and per character.
    ``x_ids, y_ids``: integer (batch, T); returns a 0-D array in the computation's dtype. Raises, when
    called, the errors of :func:`char_loss`.
    """

    def evaluate(params, states, x_ids, y_ids):
        return char_loss(model, params, x_ids, y_ids, states, vocab_size)[1][0]

    return jax.jit(evaluate)


def gradient_norms(model: RecurrentModel, params, x_ids, y_ids, states, vocab_size: int,
                   grad: str = "manual") -> Sequence[dict]:
    """The largest absolute gradient of every parameter, per layer (to show every weight learns).

    Shows erratum 2 fixed: with the book's GRU every weight but ``W_v, B_v`` gets exactly zero gradient (book
    ch. 6). ``x_ids, y_ids``: integer (batch, T). Returns one dict per layer, ``{param name: float}``.
    Raises the errors of :func:`char_loss`.
    """
    grads = jax.grad(lambda p: char_loss(model, p, x_ids, y_ids, states, vocab_size, grad=grad)[0])(params)
    return [{k: float(jnp.max(jnp.abs(g))) for k, g in layer.items()} for layer in grads]
