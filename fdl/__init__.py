"""fdl: *Deep Learning from Scratch* (Weidman, 2019) as pure JAX functions with hand-written backward passes.

Every operation of the book is an :class:`~fdl.ops.Op`: a plain forward plus the book's backward as a
``jax.custom_vjp``. Every model runs either way, chosen by ``grad="manual" | "autodiff"``, and
:mod:`fdl.testing` checks that the two agree.
"""

from . import (
    autodiff,
    checkpoint,
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
    text,
)
from .layers import Layer, conv2d, dense, dropout, flatten, reshape, serial, summary
from .losses import mean_squared_error, softmax_cross_entropy
from .train import History, TrainState, evaluate, fit, make_train_step, predict

__version__ = "0.2.0"

__all__ = [
    "autodiff", "checkpoint", "init", "layers", "losses", "metrics", "ops", "optim", "parallel", "precision",
    "recurrent", "testing", "text", "Layer", "conv2d", "dense", "dropout", "flatten", "reshape", "serial",
    "mean_squared_error", "softmax_cross_entropy",
    "History", "TrainState", "evaluate", "fit", "make_train_step", "predict", "summary",
]
