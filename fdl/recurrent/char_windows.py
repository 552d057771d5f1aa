"""The character model's sampler: windows of the text and their targets, one batch per step (book ch. 6)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


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
