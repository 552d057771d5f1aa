"""What a training step carries from one step to the next."""

from __future__ import annotations

from typing import Any, NamedTuple


class TrainState(NamedTuple):
    """The state a train step reads and returns.

    A pytree (a NamedTuple); shapes and dtypes are those of the params (e.g. float32) and of the optimizer
    state built from them, which keep their dtypes from step to step. A plain container: nothing is checked.

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
