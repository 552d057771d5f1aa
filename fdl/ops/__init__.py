"""The book's Operations, each a forward with a hand-written backward (see :class:`Op`)."""

from .._moved import moved_attribute
from ._op import GRAD_MODES, Op, op
from .activations import ACTIVATIONS, get_activation, leaky_relu, linear, relu, sigmoid, tanh
from .conv import channel_bias_add, conv2d, conv2d_im2col, im2col
from .conv_loops import conv1d_loops, conv2d_loops
from .dense import bias_add, weight_multiply
from .dropout import dropout, dropout_mask
from .reshape import flatten

__all__ = [
    "GRAD_MODES",
    "Op",
    "op",
    "ACTIVATIONS",
    "get_activation",
    "linear",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "weight_multiply",
    "bias_add",
    "dropout",
    "dropout_mask",
    "flatten",
    "channel_bias_add",
    "conv2d",
    "conv2d_im2col",
    "im2col",
    "conv1d_loops",
    "conv2d_loops",
]


def __getattr__(name):
    return moved_attribute(__name__, name)
