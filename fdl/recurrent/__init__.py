"""Recurrent networks (book ch. 6): cells, layers with hand-written BPTT, stacked character models.

* ``rnn_cell.py``, ``gru_cell.py``, ``lstm_cell.py``: each cell's node and node backward as the book writes
  them (``RNN``, ``GRU``, ``LSTM``), beside the fused fast forms the layers use by default (``*_FUSED``);
  each declaring its parameters with their shapes and fans; ``cell.py``: the five-member :class:`Cell`
  interface and :class:`ParamSpec`; ``cells.py``: the registry (:func:`get_cell`).
* ``layers.py``: :func:`rnn_layer`, a cell run over time with ``lax.scan`` (``impl="fused" | "node"``);
  ``params.py``: its params drawn from the cell's declaration with :mod:`fdl.init`'s initialisers.
* ``model.py``: :func:`stack`, layers in order as one model.
* The character model, built on :mod:`fdl.train`: ``char_loss.py`` (:func:`char_loss`, :func:`char_loss_fn`),
  ``char_windows.py`` (the sampler :class:`CharWindows`), ``char_train.py`` (the trainer :func:`fit_chars`),
  ``char_eval.py`` (:func:`make_char_eval`, :func:`gradient_norms`).
* ``sample.py``: :func:`sample`, text from a trained model one character at a time.
"""

from .. import _moved
from . import gru_cell, lstm_cell, rnn_cell
from .cell import ParamSpec
from .cells import CELLS, GRU, GRU_FUSED, IMPLS, LSTM, LSTM_FUSED, RNN, RNN_FUSED, Cell, LSTMState, RNNState, get_cell
from .char_eval import gradient_norms, make_char_eval
from .char_loss import char_loss, char_loss_fn
from .char_train import fit_chars
from .char_windows import CharWindows
from .layers import RecurrentLayer, rnn_layer, run
from .model import RecurrentModel, stack
from .sample import sample

__all__ = [
    "gru_cell",
    "lstm_cell",
    "rnn_cell",
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
    "ParamSpec",
    "RNNState",
    "get_cell",
    "RecurrentLayer",
    "rnn_layer",
    "run",
    "CharWindows",
    "RecurrentModel",
    "char_loss",
    "char_loss_fn",
    "fit_chars",
    "gradient_norms",
    "make_char_eval",
    "sample",
    "stack",
]


def __getattr__(name):
    return _moved.moved_attribute(__name__, name)
