"""Recurrent networks (book ch. 6): cells, layers with hand-written BPTT, stacked character models.

* ``rnn_cell.py``, ``gru_cell.py``, ``lstm_cell.py``: each cell's node and node backward as the book writes
  them (``RNN``, ``GRU``, ``LSTM``), beside the fused fast forms the layers use by default (``*_FUSED``);
  ``cell.py``: the five-member :class:`Cell` interface; ``cells.py``: the registry (:func:`get_cell`).
* ``layers.py``: :func:`rnn_layer`, a cell run over time with ``lax.scan`` (``impl="fused" | "node"``).
* ``model.py``: :func:`stack` of layers, the character loss (:func:`char_loss_fn`), its sampler
  (:class:`CharWindows`) and trainer (:func:`fit_chars`), built on :mod:`fdl.train`.
* ``sample.py``: :func:`sample`, text from a trained model one character at a time.
"""

from . import gru_cell, lstm_cell, rnn_cell
from .cells import CELLS, GRU, GRU_FUSED, IMPLS, LSTM, LSTM_FUSED, RNN, RNN_FUSED, Cell, LSTMState, RNNState, get_cell
from .layers import RecurrentLayer, rnn_layer, run
from .model import CharWindows, RecurrentModel, char_loss, char_loss_fn, fit_chars, make_char_eval, stack
from .model import make_char_train_step as make_char_train_step  # removed in 0.2: a TypeError names the new one
from .sample import sample

__all__ = ["gru_cell", "lstm_cell", "rnn_cell",
           "CELLS", "GRU", "GRU_FUSED", "IMPLS", "LSTM", "LSTM_FUSED", "RNN", "RNN_FUSED", "Cell", "LSTMState",
           "RNNState", "get_cell", "RecurrentLayer", "rnn_layer", "run",
           "CharWindows", "RecurrentModel", "char_loss", "char_loss_fn", "fit_chars", "make_char_eval",
           "make_char_train_step", "sample", "stack"]
