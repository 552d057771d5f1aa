"""What a training step carries from one step to the next."""

from __future__ import annotations

from typing import Any, NamedTuple


class TrainState(NamedTuple):
    """The state a train step reads and returns.

    Attributes:
      params: the model's parameter pytree (e.g. a list of ``{"W", "B"}`` dicts).
      opt_state: the optax optimizer state that goes with ``params``.
      aux: what the loss function carries from step to step besides the params: ``None`` for dense and
        conv models; for the character models of ch. 6 the layers' start states (book: ``start_H``), which
        each batch ends with and the next begins from.
    """

    params: Any
    opt_state: Any
    aux: Any = None
