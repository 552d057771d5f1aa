"""Many train steps as one compiled program: a ``lax.scan`` over a chunk of batches, data on the device.

A *chunk* is ``count`` consecutive steps of one pass (``epoch``) over the data, starting at step ``start``.
The function :func:`make_chunk` returns is jitted once per ``count`` (and ``ragged``); ``epoch`` and
``start`` are traced, so every chunk of an epoch, and every epoch, reuses the same compiled program.
Nothing is pulled to the host per step: the batches are gathered from ``data`` on the device, inside the
compiled chunk (by :class:`ShuffledEpochs` once at the chunk's start, by the others step by step).

Which rows (or windows) make each step's batch, and which dropout key it gets, is a *sampler*'s job:

* :class:`ShuffledEpochs` (the book's ``Trainer``): each epoch a new permutation of the ``n`` examples, cut
  into batches of ``batch_size``; the ragged last batch of ``n % batch_size`` examples is one more step;
* :class:`Prebatched`: ``data`` already holds one batch per step along its leading axis (benchmarks);
* :func:`fdl.recurrent.CharWindows`: windows of a character text (ch. 6).

A sampler has two methods: ``plan(data, key, epoch, start, count, ragged) -> (items, keys, last)``
(``items``: a pytree with a leading axis of ``count``; ``keys``: ``count`` PRNG keys; ``last``: ``None``
or the ``(item, key)`` of the ragged last step) and ``batch(data, item) -> batch``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from .state import TrainState


class ShuffledEpochs(NamedTuple):
    """Shuffled passes over ``n`` examples in batches of ``batch_size`` (book: ``Trainer.fit`` with
    ``permute_data`` and ``generate_batches``); ``data`` is ``(X, Y)``, each with ``n`` rows.

    Epoch ``e`` uses ``jax.random.fold_in(key, e)``, split into a permutation key and the steps' dropout keys.
    Each batch is ``(X[rows], Y[rows])``, ``(batch_size, ...)`` in the arrays' own dtypes (the ragged last one
    ``(n % batch_size, ...)``). Nothing is checked here (``fit`` checks the data and ``batch_size``).
    """

    n: int
    batch_size: int

    @property
    def full_steps(self) -> int:
        return self.n // self.batch_size

    @property
    def ragged(self) -> bool:
        return self.n % self.batch_size > 0

    def plan(self, data, key, epoch, start, count: int, ragged: bool):
        full, bs = self.full_steps, self.batch_size
        k_perm, k_steps = jax.random.split(jax.random.fold_in(key, epoch))
        perm = jax.random.permutation(k_perm, self.n)
        keys = jax.random.split(k_steps, full + self.ragged)
        rows = jax.lax.dynamic_slice_in_dim(perm, start * bs, count * bs)
        batches = jax.tree.map(lambda a: jnp.take(a, rows, axis=0).reshape(count, bs, *a.shape[1:]), data)
        step_keys = keys[start + jnp.arange(count)]
        last = (jax.tree.map(lambda a: jnp.take(a, perm[full * bs:], axis=0), data), keys[full]) if ragged else None
        return batches, step_keys, last

    def batch(self, data, batch):
        return batch  # gathered for the whole chunk in plan (gathering inside the loop changes XLA's fusion)


class Prebatched(NamedTuple):
    """``data`` holds one batch per step along its leading axis; step ``k`` gets ``fold_in(key, k)``.

    ``data``: a pytree of arrays ``(steps, batch, ...)``; step ``k``'s batch is ``data[k]`` (each leaf's
    ``[k]``), dtypes kept. Not in the book (benchmarks). Nothing is checked: a step past the leading axis
    reads a clamped index, as jax's indexing does inside ``jit``.
    """

    def plan(self, data, key, epoch, start, count: int, ragged: bool):
        steps = start + jnp.arange(count)
        return steps, jax.vmap(lambda k: jax.random.fold_in(key, k))(steps), None

    def batch(self, data, step):
        return jax.tree.map(lambda a: a[step], data)


def all_finite(tree) -> jax.Array:
    """True when every floating-point leaf of ``tree`` is finite (a scalar boolean array).

    Leaves of any shape; integer and boolean leaves are skipped; an empty tree gives True. Raises nothing.
    """
    leaves = [jnp.all(jnp.isfinite(a)) for a in jax.tree.leaves(tree) if jnp.issubdtype(jnp.result_type(a),
                                                                                         jnp.inexact)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def make_chunk(step: Callable, sampler, *, shard: Callable | None = None,
               on_trace: Callable | None = None) -> Callable:
    """A jitted ``chunk(state, data, key, epoch, start, *, count, ragged=False) -> (state, losses, finite)``.

    Runs ``step`` (from :func:`~fdl.train.make_train_step`) on ``count`` batches in a ``lax.scan``, then on
    the ragged last batch if ``ragged``. ``losses``: ``(count + ragged,)``, one per step; ``finite``: whether
    the losses, params and optimizer state are all finite afterwards (checked on the device; the caller
    decides what to do). ``shard(batch)`` may constrain each batch's layout over devices
    (:class:`~fdl.train.DataParallel`); ``on_trace()`` is called each time the chunk is traced.

    The inner loop of the book's ``Trainer.fit`` (ch. 3: one ``train_batch`` and ``optim.step`` per batch),
    compiled. ``losses`` are in the loss's dtype; ``finite`` is a 0-D boolean array.

    Raises nothing itself; when called, the errors of ``step`` (the model's and the loss's, at trace time)
    propagate, and jax raises TypeError if ``step`` returns a state whose structure or dtypes differ from the
    state it got (``lax.scan``'s carry rule).
    """

    def chunk(state: TrainState, data, key, epoch, start, count: int, ragged: bool = False):
        if on_trace is not None:
            on_trace()
        items, keys, last = sampler.plan(data, key, epoch, start, count, ragged)

        def body(state, item_and_key):
            item, k = item_and_key
            batch = sampler.batch(data, item)
            return step(state, shard(batch) if shard is not None else batch, k)

        state, losses = jax.lax.scan(body, state, (items, keys))
        if last is not None:
            state, value = step(state, sampler.batch(data, last[0]), last[1])
            losses = jnp.concatenate([losses, value[None]])
        return state, losses, all_finite((losses, state.params, state.opt_state))

    return jax.jit(chunk, static_argnames=("count", "ragged"))
