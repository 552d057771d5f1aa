"""The recurrent cells by name (book ch. 6: RNNNode, LSTMNode, GRUNode), each in two implementations.

One file per cell: :mod:`~fdl.recurrent.rnn_cell`, :mod:`~fdl.recurrent.lstm_cell`,
:mod:`~fdl.recurrent.gru_cell`, each with the equations in its docstring, the book's node and node backward
(``node``, ``node_backward``) and the fused fast form. The interface a layer uses is :class:`Cell`
(:mod:`~fdl.recurrent.cell`).

``impl="node"`` runs the readable node step by step; ``impl="fused"`` (the layers' default) runs the same
equations with the gates side by side and the per-step weight products taken out of the loop; it trains
faster. Both are tested equal to each other and to ``jax.grad``.
"""

from __future__ import annotations

from .cell import Cell, LSTMState, RNNState
from .gru_cell import GRU, GRU_FUSED
from .lstm_cell import LSTM, LSTM_FUSED
from .rnn_cell import RNN, RNN_FUSED

IMPLS = ("fused", "node")
CELLS = {
    "rnn": {"node": RNN, "fused": RNN_FUSED},
    "lstm": {"node": LSTM, "fused": LSTM_FUSED},
    "gru": {"node": GRU, "fused": GRU_FUSED},
}

__all__ = [
    "CELLS",
    "GRU",
    "GRU_FUSED",
    "IMPLS",
    "LSTM",
    "LSTM_FUSED",
    "RNN",
    "RNN_FUSED",
    "Cell",
    "LSTMState",
    "RNNState",
    "get_cell",
]


def get_cell(name: str, impl: str = "fused") -> Cell:
    """The cell ``name`` (``"rnn"``, ``"lstm"``, ``"gru"``) in implementation ``impl`` (``"fused"`` or ``"node"``).

    Book ch. 6: RNNNode, LSTMNode, GRUNode. The cell's shapes are those :class:`Cell` documents.

    Raises:
      ValueError: an unknown name or implementation; the message lists the known ones.
    """
    try:
        forms = CELLS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown cell {name!r}; choose one of {sorted(CELLS)}") from None
    if impl not in IMPLS:
        raise ValueError(
            f"unknown cell implementation impl={impl!r}; choose one of {IMPLS} "
            "('fused' trains faster, 'node' is the book's node step by step)"
        )
    return forms[impl]
