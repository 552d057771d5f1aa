"""fdl: *Deep Learning from Scratch* (Weidman, 2019) as pure JAX functions with hand-written backward passes.

Every operation of the book is an :class:`~fdl.ops.Op`, a plain forward plus the book's backward; every
model runs either way (``grad="manual" | "autodiff"``) and :mod:`fdl.testing` checks that the two agree.
Three tiers, each importing only from those before it: the library (``ops``, ``losses``, ``layers``,
``recurrent``, ``init``, ``optim``, ``train``, ``metrics``, ``checkpoint``, ``parallel``, ``precision``,
``testing``, ``data``); :mod:`fdl.chapters`, the chapter demos written without the library; and
:mod:`fdl.harness`, reproducing the book's figures and the ``fdl`` command.
"""

from . import (
    checkpoint,
    compile_cache,
    init,
    layers,
    losses,
    metrics,
    ops,
    optim,
    parallel,
    precision,
    recurrent,
    testing,
)
from ._moved import moved_attribute
from .layers import Layer, conv2d, dense, dropout, flatten, reshape, serial, summary
from .losses import mean_squared_error, softmax_cross_entropy
from .train import History, TrainState, evaluate, fit, make_train_step, predict

__version__ = "0.2.0"

__all__ = [
    "checkpoint",
    "init",
    "layers",
    "losses",
    "metrics",
    "ops",
    "optim",
    "parallel",
    "precision",
    "recurrent",
    "testing",
    "Layer",
    "conv2d",
    "dense",
    "dropout",
    "flatten",
    "reshape",
    "serial",
    "mean_squared_error",
    "softmax_cross_entropy",
    "History",
    "TrainState",
    "evaluate",
    "fit",
    "make_train_step",
    "predict",
    "summary",
]

compile_cache.enable()  # $FDL_JAX_CACHE or ~/.cache/fdl/jax, before fdl compiles anything (fdl/compile_cache.py)


def __getattr__(name):  # fdl.foundations and the other moved modules and names fail naming the new place
    return moved_attribute(__name__, name)
