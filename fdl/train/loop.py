"""Many train steps as one compiled program: a ``lax.scan`` over a chunk of batches, data on the device.

A *chunk* is ``count`` consecutive steps of one pass (``epoch``) over the data, starting at step ``start``;
it compiles once per ``count`` and ``ragged`` (``epoch`` and ``start`` are traced). Batches are gathered
from ``data`` on the device: step by step, or, for one run of a sampler whose ``gather_ahead`` is true, all
of the chunk's batches at its start (under ``vmap`` that would copy every run's epoch).

Which rows (or windows) make each step's batch, and which dropout key it gets, is a *sampler*'s job:

* :class:`ShuffledEpochs` (the book's ``Trainer``): a new permutation each epoch, cut into batches;
* :class:`GivenPermutations`: the same, with each epoch's permutation given (e.g. NumPy's, to replay a run);
* :class:`Prebatched`: ``data`` already holds one batch per step along its leading axis (benchmarks);
* :func:`fdl.recurrent.CharWindows`: windows of a character text (ch. 6).

A sampler has two methods: ``plan(data, key, epoch, start, count, ragged) -> (items, keys, last)``
(``items``: a pytree with a leading axis of ``count``; ``keys``: ``count`` PRNG keys; ``last``: ``None``
or the ``(item, key)`` of the ragged last step) and ``batch(data, item) -> batch``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .state import TrainState, select


class ShuffledEpochs(NamedTuple):
    """Shuffled passes over ``n`` examples in batches of ``batch_size`` (book ch. 3: ``Trainer.fit``'s
    ``permute_data`` and ``generate_batches``); ``data`` is ``(X, Y)``, each with ``n`` rows.

    Epoch ``e`` uses ``jax.random.fold_in(key, e)``, split into a permutation key and the steps' dropout keys.
    Each batch is ``(X[rows], Y[rows])``, ``(batch_size, ...)`` in the arrays' own dtypes; the ragged last one,
    ``(n % batch_size, ...)``, is one more step.
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
        k_perm, k_steps = jax.random.split(jax.random.fold_in(key, epoch))
        return _cut(jax.random.permutation(k_perm, self.n), k_steps, self.batch_size, start, count, ragged)

    def batch(self, data, rows):
        return jax.tree.map(lambda a: jnp.take(a, rows, axis=0), data)

    gather_ahead = True  # one run gathers its chunk's batches at the chunk's start (see the module docstring)


def _cut(perm, k_steps, batch_size: int, start, count: int, ragged: bool):
    """Steps ``start .. start + count`` of an epoch visiting the rows in the order ``perm``: their rows
    ``(count, batch_size)``, their dropout keys (from ``k_steps``) and the ragged last step, if asked."""
    n = perm.shape[0]
    full = n // batch_size
    keys = jax.random.split(k_steps, full + (n % batch_size > 0))
    rows = jax.lax.dynamic_slice_in_dim(perm, start * batch_size, count * batch_size).reshape(count, batch_size)
    last = (perm[full * batch_size :], keys[full]) if ragged else None
    return rows, keys[start + jnp.arange(count)], last


class GivenPermutations:
    """:class:`ShuffledEpochs` with each epoch's order given: epoch ``e`` visits rows ``permutations[e]``.

    For replaying another program's shuffles (the book's ``np.random.permutation``, ch. 3); dropout keys as
    :class:`ShuffledEpochs` draws them. Compared by identity (a new object compiles a new program).

    Args:
      permutations: ``(epochs, n)`` integers, each row a permutation of ``0 .. n - 1``.
      batch_size: examples per step.

    Raises:
      ValueError: another shape, or a row that is not a permutation.
    """

    full_steps, ragged, batch = ShuffledEpochs.full_steps, ShuffledEpochs.ragged, ShuffledEpochs.batch
    gather_ahead = True

    def __init__(self, permutations, batch_size: int):
        p = np.asarray(permutations)
        if p.ndim != 2 or p.shape[1] == 0 or not np.issubdtype(p.dtype, np.integer):
            raise ValueError(f"permutations must be an (epochs, n) integer array, got {p.dtype} {p.shape}")
        bad = np.flatnonzero(np.any(np.sort(p, axis=1) != np.arange(p.shape[1]), axis=1))
        if len(bad):
            raise ValueError(f"permutations[{bad[0]}] is not a permutation of 0 .. {p.shape[1] - 1}")
        self.n, self.batch_size, self.epochs = p.shape[1], batch_size, p.shape[0]
        self.permutations = jnp.asarray(p, jnp.int32)

    def plan(self, data, key, epoch, start, count: int, ragged: bool):
        _, k_steps = jax.random.split(jax.random.fold_in(key, epoch))
        return _cut(self.permutations[epoch], k_steps, self.batch_size, start, count, ragged)


class Prebatched(NamedTuple):
    """``data`` holds one batch per step along its leading axis; step ``k`` gets ``fold_in(key, k)``.

    ``data``: a pytree of arrays ``(steps, batch, ...)``; step ``k``'s batch is each leaf's ``[k]`` (a step
    past the leading axis reads a clamped index, as ``jit``-ed indexing does). Not in the book (benchmarks).
    """

    def plan(self, data, key, epoch, start, count: int, ragged: bool):
        steps = start + jnp.arange(count)
        return steps, jax.vmap(lambda k: jax.random.fold_in(key, k))(steps), None

    def batch(self, data, step):
        return jax.tree.map(lambda a: a[step], data)


def all_finite(tree) -> jax.Array:
    """True when every floating-point leaf of ``tree`` is finite, as a 0-D bool array (other leaves are skipped;
    an empty tree gives True)."""
    leaves = [
        jnp.all(jnp.isfinite(a)) for a in jax.tree.leaves(tree) if jnp.issubdtype(jnp.result_type(a), jnp.inexact)
    ]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def make_chunk(
    step: Callable,
    sampler,
    *,
    shard: Callable | None = None,
    on_trace: Callable | None = None,
    runs: bool = False,
    vectorize: bool = True,
) -> Callable:
    """A jitted ``chunk(state, data, key, epoch, start, *, count, ragged=False) -> (state, losses, finite)``:
    the inner loop of the book's ``Trainer.fit`` (ch. 3), compiled.

    Runs ``step`` (from :func:`~fdl.train.make_train_step`) on ``count`` batches in a ``lax.scan``, then on
    the ragged last batch if ``ragged``. ``losses``: ``(count + ragged,)`` in the loss's dtype; ``finite``: a
    bool, whether the losses, params and optimizer state are all finite afterwards. ``shard(batch)`` may
    constrain each batch's layout over devices (:class:`~fdl.train.DataParallel`; a ``shard`` whose
    ``gather_ahead`` is false makes each step gather its own batch); ``on_trace()`` is called at each trace.

    ``runs=True``: ``chunk(states, data, keys, epoch, start, active, *, count, ragged)`` for ``S`` runs
    stacked on a leading axis of ``states`` and ``keys`` (``active``: ``(S,)`` bool), ``jax.vmap``-ed, or
    with ``vectorize=False`` one after another (``lax.map``; XLA:CPU runs a ``vmap``-ed convolution slowly).
    ``losses`` is ``(S, count + ragged)``, ``finite`` ``(S,)``; a run not active, or gone non-finite, keeps
    the state it came in with.
    """

    def one(state: TrainState, data, key, epoch, start, count: int, ragged: bool, ahead: bool):
        items, keys, last = sampler.plan(data, key, epoch, start, count, ragged)
        if ahead:  # the whole chunk's batches at once (one run; see the module docstring)
            items = jax.vmap(sampler.batch, in_axes=(None, 0))(data, items)

        def body(state, item_and_key):
            item, k = item_and_key
            batch = item if ahead else sampler.batch(data, item)
            return step(state, shard(batch) if shard is not None else batch, k)

        state, losses = jax.lax.scan(body, state, (items, keys))
        if last is not None:
            state, value = step(state, sampler.batch(data, last[0]), last[1])
            losses = jnp.concatenate([losses, value[None]])
        return state, losses, all_finite((losses, state.params, state.opt_state))

    # a shard function may say no: rows split over devices (fdl.parallel.global_rows) are gathered step by step, one
    # batch at a time, where the whole chunk's gather would bring every row to every device
    ahead = bool(getattr(sampler, "gather_ahead", False)) and getattr(shard, "gather_ahead", True)

    def chunk(state: TrainState, data, key, epoch, start, count: int, ragged: bool = False):
        if on_trace is not None:
            on_trace()
        return one(state, data, key, epoch, start, count, ragged, ahead)

    def chunks(states: TrainState, data, keys, epoch, start, active, count: int, ragged: bool = False):
        if on_trace is not None:
            on_trace()
        if len(active) == 1:  # one run: the one-run program, bitwise
            new, losses, finite = one(
                jax.tree.map(lambda a: a[0], states), data, keys[0], epoch, start, count, ragged, ahead
            )
            new, losses, finite = jax.tree.map(lambda a: a[None], (new, losses, finite))
        elif vectorize:
            many = jax.vmap(
                functools.partial(one, count=count, ragged=ragged, ahead=False), in_axes=(0, None, 0, None, None)
            )
            new, losses, finite = many(states, data, keys, epoch, start)
        else:
            new, losses, finite = jax.lax.map(
                lambda sk: one(sk[0], data, sk[1], epoch, start, count, ragged, ahead), (states, keys)
            )
        return select(active & finite, new, states), losses, finite

    if runs:
        return jax.jit(chunks, static_argnames=("count", "ragged"))
    return jax.jit(chunk, static_argnames=("count", "ragged"))
