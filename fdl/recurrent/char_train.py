"""The character model's trainer (book ch. 6: RNNTrainer.train), built on :mod:`fdl.train`."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..data.text import book_batch, check_ids, random_batch
from .char_eval import char_score
from .char_loss import char_loss_fn
from .char_windows import CharWindows
from .model import RecurrentModel


def fit_chars(
    model: RecurrentModel,
    optimizer: optax.GradientTransformation,
    train_ids,
    *,
    steps: int,
    batch_size: int = 32,
    sequence_length: int = 25,
    batches: str = "random",
    valid=None,
    eval_every: int = 100,
    seed: int = 0,
    grad: str = "manual",
    reduction: str = "mean",
    dtype=jnp.float32,
    log=print,
    plugins=(),
):
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
        raise ValueError(
            f"fit_chars: train_ids must be a 1-D integer array of character ids, got {ids.dtype}{list(ids.shape)}"
        )
    check_ids(ids, vocab_size, "fit_chars: train_ids")
    if batches not in ("random", "book"):
        raise ValueError(f"fit_chars: batches must be 'random' or 'book', got {batches!r}")
    text_check = (
        (lambda: book_batch(ids, 0, batch_size, sequence_length))
        if batches == "book"
        else (lambda: random_batch(ids, jax.random.key(0), batch_size, sequence_length))
    )
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
        evaluate = (char_score(model, vocab_size), tuple(jnp.asarray(v) for v in valid))
    histories = [History(seed=s) for s in seeds]
    state, histories = train(
        lambda shard: make_chunk(step, sampler, shard=shard, runs=True),
        state,
        jnp.asarray(ids),
        schedule,
        key=keys[:, 1],
        evaluate=evaluate,
        log=log,
        plugins=plugins,
        batch_size=batch_size,
        unit="step",
        histories=histories,
        labels=[f"seed {s}" for s in seeds] if many else None,
    )
    state = state._replace(epoch=np.zeros(len(seeds), int))
    if many:
        return state._replace(epoch=0), list(histories)
    return take_run(state, 0)._replace(epoch=0), histories[0]
