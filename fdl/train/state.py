"""What a run carries from one step, and one evaluation, to the next: plain values (NamedTuples of arrays).

* :class:`TrainState`: params, optimizer state, the carried ``aux`` and the epochs completed;
* :class:`EarlyStopping`: the best evaluation so far and whether the run still trains, with
  :meth:`EarlyStopping.update` returning the next value (flax's ``EarlyStopping.update`` is the model; here
  every field is an array, so that the same function runs under ``jax.vmap`` for many runs at once);
* :class:`StopRule`: what early stopping watches and which params a stopped run returns.
"""

from __future__ import annotations

import math
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


class StopRule(NamedTuple):
    """How early stopping decides (``fit(..., early_stopping=StopRule(...))``; ``True`` is ``StopRule()``).

    A run stops at its first evaluation whose ``monitor`` value is not strictly below the best so far.

    Attributes:
      monitor: the evaluated value that decides: ``"loss"`` (the training loss on the test set) or the name of
        one of ``fit``'s ``metrics`` (e.g. ``"book loss"`` for :func:`fdl.metrics.book_cross_entropy`).
      restore_best: return the params of the best evaluation (fdl's default). ``False``: return the params
        trained through the evaluation that stopped the run, which is what the book's notebooks evaluate
        (its ``Trainer`` reverts ``trainer.net`` to a copy, but the notebooks score the original network).

    The book's ch. 4 rule is ``StopRule("book loss", restore_best=False)`` with
    ``metrics={"book loss": fdl.metrics.book_cross_entropy}``.
    """

    monitor: str = "loss"
    restore_best: bool = True

    def choose(self, evals) -> int | None:
        """Which evaluation's params this rule returns, given the evaluations of a run trained without early
        stopping (``History.evals`` of ``fit(..., early_stopping=False)``, with ``self.monitor`` among them).

        A run's training does not depend on whether it stops, so this is what ``fit(...,
        early_stopping=self)`` returns, read off one longer run: ``None`` when the rule never stops the
        run (its final params), else an index into ``evals``; ``-1`` for a run whose first evaluation is
        already non-finite (its initial params). Several rules can so be compared on one run.

        Raises:
          KeyError: an evaluation without ``self.monitor``.
        """
        best, best_i = math.inf, None
        for i, e in enumerate(evals):
            value = e[self.monitor] if math.isfinite(e["loss"]) else math.nan
            if math.isfinite(value) and value < best:
                best, best_i = value, i
            elif not math.isfinite(value):
                return best_i if best_i is not None else -1
            else:
                return best_i if self.restore_best else i
        return None


class EarlyStopping(NamedTuple):
    """Early stopping (book ch. 4: ``Trainer.fit`` with ``early_stopping=True``) as a value.

    Every field is an array (0-D for one run; a leading run axis for several, where :meth:`update` is
    ``jax.vmap``-ed). Build the first value with :meth:`start`.

    Attributes:
      best_loss: the lowest monitored value so far (``inf`` before the first).
      best_at: chunks completed at that evaluation (an int).
      active: whether the run still trains (bool).
      stopped_early: whether an evaluation that did not improve stopped it (bool).
      best: the :class:`TrainState` to return: the best evaluation's (or, with ``restore_best=False``, the one
        that stopped the run).
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

    def update(self, loss, state: TrainState, at, *, enabled: bool, restore_best: bool = True) -> EarlyStopping:
        """The value after an evaluation of ``state`` (reached after ``at`` chunks) scoring ``loss``.

        An evaluation improves when its loss is finite and strictly below the best so far. With
        ``enabled``, one that does not improve stops the run (the book's rule). A non-finite loss never
        improves and always stops the run, enabled or not (a diverged model is never "the best").
        A stopped run's value no longer changes.

        Args:
          loss: the monitored value, a 0-D float array.
          state: the state evaluated.
          at: chunks completed (an int or 0-D int array).
          enabled: apply the book's rule (a Python bool, fixed when traced).
          restore_best: ``False``: a finite evaluation that stops the run becomes ``best`` (see
            :class:`StopRule`).
        """
        finite = jnp.isfinite(loss)
        improved = self.active & finite & (loss < self.best_loss)
        stop = self.active & ~improved & (enabled | ~finite)
        keep = improved | (stop & finite) if not restore_best else improved
        return EarlyStopping(
            best_loss=jnp.where(improved, loss.astype(self.best_loss.dtype), self.best_loss),
            best_at=jnp.where(keep, at, self.best_at),
            active=self.active & ~stop,
            stopped_early=self.stopped_early | stop,
            best=select(keep, state, self.best))


def select(pick, a, b):
    """``a`` where ``pick`` else ``b``, leaf by leaf over two pytrees of one structure (``pick`` a 0-D bool
    for one run, or ``(runs,)`` against a leading run axis)."""
    def one(x, y):
        p = jnp.reshape(pick, jnp.shape(pick) + (1,) * (jnp.ndim(x) - jnp.ndim(pick)))
        return jnp.where(p, x, y)

    return jax.tree.map(one, a, b)
