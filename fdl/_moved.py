"""Spellings that fdl 0.2 moved or removed: each old one fails with an error that names the new one.

One table for modules and attributes alike. A moved module (``import fdl.foundations``) raises
``ModuleNotFoundError`` from a finder installed by ``fdl/__init__.py``; a moved attribute
(``fdl.ops.conv_2d``) raises ``AttributeError`` from its module's ``__getattr__``, which calls
:func:`moved_attribute`. A removed keyword argument (``KEYWORDS``) raises ``TypeError`` from the function
that took it, which passes its ``**kwargs`` to :func:`refuse_keywords`.
"""

from __future__ import annotations

import importlib.abc
import sys

MOVED = {
    # the chapter demos and the reproduction harness left the library's top level (issue 16)
    "fdl.foundations": "fdl.chapters.foundations",
    "fdl.fundamentals": "fdl.chapters.fundamentals",
    "fdl.autodiff": "fdl.chapters.autodiff",
    "fdl.book": "fdl.harness.book",
    "fdl.experiment": "fdl.harness.experiment",
    "fdl.cli": "fdl.harness.cli",
    "fdl.text": "fdl.data.text (Vocabulary, split, windows, book_batch, random_batch, check_ids) and "
                "fdl.recurrent.sample",
    # ch. 2's helpers no longer shadow fdl.train, fdl.predict and fdl.metrics
    "fdl.chapters.fundamentals.train": "fdl.chapters.fundamentals.train_regression",
    "fdl.chapters.fundamentals.predict": "fdl.chapters.fundamentals.predict_regression",
    "fdl.chapters.fundamentals.mae": "fdl.metrics.mae (a 0-D array: float(...) for a number)",
    "fdl.chapters.fundamentals.rmse": "fdl.metrics.rmse (a 0-D array: float(...) for a number)",
    # the chapter's loop convolutions are named apart from the op to train with, fdl.ops.conv2d
    "fdl.ops.conv_1d": "fdl.ops.conv1d_loops",
    "fdl.ops.conv_2d": "fdl.ops.conv2d_loops",
    "fdl.ops.conv_loops.conv_1d": "fdl.ops.conv_loops.conv1d_loops",
    "fdl.ops.conv_loops.conv_2d": "fdl.ops.conv_loops.conv2d_loops",
    # the trainer redesign (issue 12)
    "fdl.train.make_train_epoch": "fdl.train.make_chunk(step, ShuffledEpochs(n, batch_size)) (compiled: a "
                                  "scan over the epoch's steps)",
    "fdl.train.make_loss_fn": "fdl.train.model_loss(model, loss, grad=...), which returns (loss, aux)",
}

# function -> {keyword it no longer takes: what to write instead}
_LAYER_KEYWORDS = {"dropout": "keep_prob= (the same keep probability, named as the dropout layer names it)"}
KEYWORDS = {
    "fit": {
        "params": "fit(..., state=fdl.train.TrainState(params, opt_state))",
        "opt_state": "fit(..., state=fdl.train.TrainState(params, opt_state))",
        "restart": "fit(..., state=history.state) to continue a run; without state= fit starts afresh (0.3)",
        "checkpoint": "fit(..., plugins=[fdl.train.Checkpoint(path, every=N, resume=True)])",
        "checkpoint_every": "fit(..., plugins=[fdl.train.Checkpoint(path, every=N)])",
        "resume": "fit(..., plugins=[fdl.train.Checkpoint(path, resume=True)])",
        "devices": "fit(..., plugins=[fdl.train.DataParallel(devices)])",
        "progress": "fit(..., plugins=[fdl.train.Progress()])",
        "eval_batch_size": "fdl.train.evaluate(model, loss, params, X, y, batch_size=N) after fit (fit "
                           "evaluates in chunks of 10 000 rows)",
    },
    "dense": _LAYER_KEYWORDS,
    "conv2d": _LAYER_KEYWORDS,
}


def message(old: str) -> str:
    return f"{old} was moved or renamed in fdl 0.2; use {MOVED[old]} (see the README's migration table)"


def moved_attribute(module: str, name: str):
    """The body of a module's ``__getattr__``: raise AttributeError, naming the new spelling if ``name`` moved."""
    old = f"{module}.{name}"
    if old in MOVED:
        raise AttributeError(message(old))
    raise AttributeError(f"module {module!r} has no attribute {name!r}")


class _MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Refuses to import a moved module, with a message naming where it went (finds nothing else)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in MOVED:
            # no ``name=``: importlib's ``from fdl import text`` would swallow an error that names the module
            raise ModuleNotFoundError(message(fullname))
        return None


def install_finder() -> None:
    if not any(isinstance(f, _MovedModuleFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _MovedModuleFinder())


def refuse_keywords(func: str, given: dict) -> None:
    """Raise TypeError for the keyword arguments ``given`` (``func``'s ``**kwargs``): those in ``KEYWORDS[func]``
    name their replacement, any other is reported as Python reports an unexpected keyword."""
    moved = KEYWORDS.get(func, {})
    for name in given:
        if name in moved:
            raise TypeError(f"{func}() no longer takes {name}= (fdl 0.2, see the README's migration table); "
                            f"use {moved[name]}")
    if given:
        raise TypeError(f"{func}() got an unexpected keyword argument {next(iter(given))!r}")
