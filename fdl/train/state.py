"""What a run carries from one step, and one evaluation, to the next: plain values (NamedTuples of arrays).

* :class:`TrainState`: params, optimizer state, the carried ``aux`` and the epochs completed;
* :class:`EarlyStopping`: the best evaluation so far and whether the run still trains, with
  :meth:`EarlyStopping.update` returning the next value (flax's ``EarlyStopping.update`` is the model; here
  every field is an array, so that the same function runs under ``jax.vmap`` for many runs at once).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class TrainState(NamedTuple):
    """The state a train step reads and returns.

    A pytree; shapes and dtypes are those of the params (e.g. float32) and of the optimizer state built from
    them, which keep their dtypes from step to step. Several runs trained together (``fit(..., seed=[...])``)
    stack every leaf on a leading run axis.

    Attributes:
      params: the model's parameter pytree (e.g. a list of ``{"W", "B"}`` dicts).
      opt_state: the optax optimizer state that goes with ``params``.
      aux: what the loss function carries from step to step besides the params: ``None`` for dense and
        conv models; for the character models of ch. 6 the layers' start states (book: ``start_H``).
      epoch: shuffled passes over the data completed to reach this state (an int, or an int array).
        :func:`fdl.fit` numbers the epochs of a continued run on from it, so that each epoch draws new
        shuffles and dropout masks and continuing equals one longer run.
    """

    params: Any
    opt_state: Any
    aux: Any = None
    epoch: Any = 0


class EarlyStopping(NamedTuple):
    """Early stopping (book ch. 4: ``Trainer.fit`` with ``early_stopping=True``) as a value.

    Every field is an array (0-D for one run; a leading run axis for several, where :meth:`update` is
    ``jax.vmap``-ed). Build the first value with :meth:`start`.

    Attributes:
      best_loss: the lowest evaluation loss so far (``inf`` before the first).
      best_at: chunks completed at that evaluation (an int).
      active: whether the run still trains (bool).
      stopped_early: whether an evaluation that did not improve stopped it (bool).
      best: the :class:`TrainState` of the best evaluation.
    """

    best_loss: Any
    best_at: Any
    active: Any
    stopped_early: Any
    best: Any

    @classmethod
    def start(cls, state: TrainState, dtype=jnp.float32) -> EarlyStopping:
        """The value before any evaluation: no best loss, active, ``best`` = ``state``."""
        return cls(jnp.asarray(jnp.inf, dtype), jnp.asarray(0, jnp.int32), jnp.asarray(True),
                   jnp.asarray(False), state)

    def update(self, loss, state: TrainState, at, *, enabled: bool) -> EarlyStopping:
        """The value after an evaluation of ``state`` (reached after ``at`` chunks) scoring ``loss``.

        An evaluation improves when its loss is finite and strictly below the best so far. With
        ``enabled``, one that does not improve stops the run (the book's rule). A non-finite loss never
        improves and always stops the run, enabled or not (a diverged model is never "the best").
        A stopped run's value no longer changes.

        Args:
          loss: the evaluation loss, a 0-D float array.
          state: the state evaluated.
          at: chunks completed (an int or 0-D int array).
          enabled: apply the book's rule (a Python bool, fixed when traced).
        """
        improved = self.active & jnp.isfinite(loss) & (loss < self.best_loss)
        stop = self.active & ~improved & (enabled | ~jnp.isfinite(loss))
        return EarlyStopping(
            best_loss=jnp.where(improved, loss.astype(self.best_loss.dtype), self.best_loss),
            best_at=jnp.where(improved, at, self.best_at),
            active=self.active & ~stop,
            stopped_early=self.stopped_early | stop,
            best=select(improved, state, self.best))


def select(pick, a, b):
    """``a`` where ``pick`` else ``b``, leaf by leaf over two pytrees of one structure (``pick`` a 0-D bool
    for one run, or ``(runs,)`` against a leading run axis)."""
    def one(x, y):
        p = jnp.reshape(pick, jnp.shape(pick) + (1,) * (jnp.ndim(x) - jnp.ndim(pick)))
        return jnp.where(p, x, y)

    return jax.tree.map(one, a, b)
