"""Training (book ch. 3: ``Trainer``; ch. 4's schedules; ch. 6's ``RNNTrainer``), in small pieces that every
chapter, the benchmark and users share:

=====================  =====================================================================================
:class:`TrainState`    params, optimizer state, the carried ``aux`` (recurrent start states), epochs done
:class:`EarlyStopping` the best evaluation so far and whether a run still trains, as a value
:class:`StopRule`      what early stopping watches and which params a stopped run returns
:func:`model_loss`     ``loss_fn(params, batch, key, aux) -> (loss, aux)`` for a layer model and a loss op
:func:`make_train_step` ``step(state, batch, key) -> (state, loss)`` from a loss function and an optimizer
:func:`make_chunk`     many steps as one jitted ``lax.scan``, batches gathered on the device by a sampler
:func:`train`          the loop over chunks for one or many stacked runs: finiteness, evaluation, plugins
:func:`fit`            the book's ``Trainer.fit`` for ``(X, y)`` arrays; ``seed=[...]``/``sweep=`` for many runs
:func:`evaluate`       loss and metrics at inference; :func:`predict`
plugins                :class:`Checkpoint`, :class:`DataParallel`, :class:`Progress`
=====================  =====================================================================================
"""

from .._moved import moved_attribute
from .evaluate import evaluate, predict
from .fit import epoch_schedule, fit
from .loop import GivenPermutations, Prebatched, ShuffledEpochs, all_finite, make_chunk
from .plugins import Checkpoint, DataParallel, Plugin, Progress
from .run import Chunk, History, Run, train
from .state import EarlyStopping, StopRule, TrainState
from .step import make_train_step, model_loss


def __getattr__(name):
    return moved_attribute(__name__, name)


__all__ = [
    "Checkpoint",
    "Chunk",
    "DataParallel",
    "EarlyStopping",
    "GivenPermutations",
    "History",
    "Plugin",
    "Prebatched",
    "Progress",
    "Run",
    "ShuffledEpochs",
    "StopRule",
    "TrainState",
    "all_finite",
    "epoch_schedule",
    "evaluate",
    "fit",
    "make_chunk",
    "make_train_step",
    "model_loss",
    "predict",
    "train",
]
