"""What a run carries from one step, and one evaluation, to the next, as values (NamedTuples):
:class:`TrainState`, :class:`EarlyStopping` and the :class:`StopRule` it applies."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class TrainState(NamedTuple):
    """The state a train step reads and returns (a pytree; several runs trained together stack every leaf on a
    leading run axis).

    Attributes:
      params: the model's parameter pytree (e.g. a list of ``{"W", "B"}`` dicts).
      opt_state: the optax optimizer state of ``params``.
      aux: what the loss function carries between steps: ``None`` for dense and conv models; the layers'
        start states for ch. 6's character models (book: ``start_H``).
      epoch: epochs completed (an int or int array); :func:`fdl.fit` numbers a continued run's epochs on
        from it, so that continuing draws what one longer run draws.
    """

    params: Any
    opt_state: Any
    aux: Any = None
    epoch: Any = 0


class StopRule(NamedTuple):
    """How early stopping decides (``fit(..., early_stopping=StopRule(...))``; ``True`` is ``StopRule()``).

    A run stops at its first evaluation whose ``monitor`` value is not strictly below the best so far, or
    whose loss is not finite.

    Attributes:
      monitor: ``"loss"`` (the loss on the test set) or the name of one of ``fit``'s ``metrics``: a value that
        falls as the model improves (to stop on accuracy, monitor a loss instead).
      restore_best: return the best evaluation's params (fdl's default); ``False``: those trained through the
        evaluation that stopped the run, which the book's notebooks score (its ``Trainer`` reverts a copy).

    The book's ch. 4 rule: ``StopRule("book loss", restore_best=False)`` with
    ``metrics={"book loss": fdl.metrics.book_cross_entropy}``.
    """

    monitor: str = "loss"
    restore_best: bool = True

    def choose(self, evals) -> int | None:
        """The evaluation whose params ``fit(..., early_stopping=self)`` returns, read off the ``evals`` of the
        same run trained with ``early_stopping=False`` (``History.evals``), so that rules compare on one run.

        Returns:
          ``None`` when the rule never stops the run (its final params), else an index into ``evals``
            (``-1``: the first evaluation is already non-finite, the initial params).

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
    """Early stopping (book ch. 4: ``Trainer.fit(early_stopping=True)``) as a value, after flax's.

    Every field is an array (0-D for one run, so that :meth:`update` can be ``jax.vmap``-ed over a leading
    run axis). :meth:`start` builds the first value.

    Attributes:
      best_loss: the lowest monitored value so far (``inf`` before the first).
      best_at: chunks completed at that evaluation (int).
      active: whether the run still trains (bool).
      stopped_early: whether an evaluation stopped it (bool).
      best: the :class:`TrainState` to return (see :class:`StopRule`'s ``restore_best``).
    """

    best_loss: Any
    best_at: Any
    active: Any
    stopped_early: Any
    best: Any

    @classmethod
    def start(cls, state: TrainState, dtype=jnp.float32) -> EarlyStopping:
        """The value before any evaluation: no best loss, active, ``best`` = ``state``."""
        return cls(jnp.asarray(jnp.inf, dtype), jnp.asarray(0, jnp.int32), jnp.asarray(True), jnp.asarray(False), state)

    def update(self, loss, state: TrainState, at, *, enabled: bool, restore_best: bool = True) -> EarlyStopping:
        """The value after evaluating ``state`` (reached after ``at`` chunks) at ``loss``.

        An evaluation improves when its loss is finite and strictly below the best so far; with ``enabled``
        (the book's rule) one that does not stops the run, and a non-finite loss always does. A stopped
        run's value no longer changes.

        Args:
          loss: the monitored value, a 0-D float array.
          state: the state evaluated.
          at: chunks completed (int or 0-D int array).
          enabled: apply the book's rule (a Python bool).
          restore_best: ``False``: a finite evaluation that stops the run becomes ``best``.
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
            best=select(keep, state, self.best),
        )


def select(pick, a, b):
    """``a`` where ``pick`` else ``b``, leaf by leaf over two pytrees of one structure (``pick`` a 0-D bool
    for one run, or ``(runs,)`` against a leading run axis)."""

    def one(x, y):
        p = jnp.reshape(pick, jnp.shape(pick) + (1,) * (jnp.ndim(x) - jnp.ndim(pick)))
        return jnp.where(p, x, y)

    return jax.tree.map(one, a, b)
