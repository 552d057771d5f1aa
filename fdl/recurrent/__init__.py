"""Recurrent networks (book ch. 6): cells, layers with hand-written BPTT, stacked character models."""

from .cells import CELLS, GRU, LSTM, RNN, Cell, LSTMState, RNNState, get_cell
from .layers import RecurrentLayer, rnn_layer, run
from .model import (
                    CharWindows,
                    RecurrentModel,
                    char_loss,
                    char_loss_fn,
                    fit_chars,
                    make_char_eval,
                    make_char_train_step,
                    stack,
)

__all__ = ["CELLS", "GRU", "LSTM", "RNN", "Cell", "LSTMState", "RNNState", "get_cell",
           "RecurrentLayer", "rnn_layer", "run",
           "CharWindows", "RecurrentModel", "char_loss", "char_loss_fn", "fit_chars", "make_char_eval",
           "make_char_train_step", "stack"]
