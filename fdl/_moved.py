"""The table of moved names, answered by the modules' ``__getattr__`` (the dates are in the table).

As jax's ``jax/_src/deprecations.py`` (the old name raises, it does not warn): a module that lost a name ends
with ``def __getattr__(name): return moved_attribute(__name__, name)``, and an old name raises
``AttributeError`` naming the new one until ``removed_in``. A moved module is answered so only as an attribute
of its parent (``fdl.foundations``); ``import fdl.foundations`` is Python's own ``ModuleNotFoundError``.
"""

from __future__ import annotations

from typing import NamedTuple


class Moved(NamedTuple):
    """One moved name: ``old`` (dotted) is answered with ``new`` until fdl ``removed_in``."""

    old: str
    new: str  # starts with the dotted name that replaces it (tests/test_moved.py checks that it exists)
    since: str  # the release that moved it, and its date
    removed_in: str = "0.4"


_V0_2 = "0.2 (2026-12-01)"

MOVED = {
    m.old: m
    for m in (
        # the chapter demos and the reproduction harness left the library's top level (issue 16)
        Moved("fdl.foundations", "fdl.chapters.foundations", _V0_2),
        Moved("fdl.fundamentals", "fdl.chapters.fundamentals", _V0_2),
        Moved("fdl.autodiff", "fdl.chapters.autodiff", _V0_2),
        Moved("fdl.book", "fdl.harness.book", _V0_2),
        Moved("fdl.experiment", "fdl.harness.experiment", _V0_2),
        Moved("fdl.cli", "fdl.harness.cli", _V0_2),
        Moved(
            "fdl.text",
            "fdl.data.text (Vocabulary, split, windows, book_batch, random_batch, check_ids) and fdl.recurrent.sample",
            _V0_2,
        ),
        # ch. 2's helpers no longer shadow fdl.train, fdl.predict and fdl.metrics
        Moved("fdl.chapters.fundamentals.train", "fdl.chapters.fundamentals.train_regression", _V0_2),
        Moved("fdl.chapters.fundamentals.predict", "fdl.chapters.fundamentals.predict_regression", _V0_2),
        Moved("fdl.chapters.fundamentals.mae", "fdl.metrics.mae (a 0-D array: float(...) for a number)", _V0_2),
        Moved("fdl.chapters.fundamentals.rmse", "fdl.metrics.rmse (a 0-D array: float(...) for a number)", _V0_2),
        # the chapter's loop convolutions are named apart from the op to train with, fdl.ops.conv2d
        Moved("fdl.ops.conv_1d", "fdl.ops.conv1d_loops", _V0_2),
        Moved("fdl.ops.conv_2d", "fdl.ops.conv2d_loops", _V0_2),
        Moved("fdl.ops.conv_loops.conv_1d", "fdl.ops.conv_loops.conv1d_loops", _V0_2),
        Moved("fdl.ops.conv_loops.conv_2d", "fdl.ops.conv_loops.conv2d_loops", _V0_2),
        # the trainer redesign (issue 12)
        Moved(
            "fdl.train.make_train_epoch",
            "fdl.train.make_chunk(step, ShuffledEpochs(n, batch_size)) (compiled: a scan over the epoch's steps)",
            _V0_2,
        ),
        Moved(
            "fdl.recurrent.make_char_train_step",
            "fdl.recurrent.fit_chars (or fdl.train.make_train_step(fdl.recurrent.char_loss_fn(model, vocab_size), "
            "optimizer) compiled with jax.jit or fdl.train.make_chunk (start states in TrainState.aux))",
            _V0_2,
        ),
        Moved(
            "fdl.train.make_loss_fn", "fdl.train.model_loss(model, loss, grad=...), which returns (loss, aux)", _V0_2
        ),
    )
}


def message(old: str) -> str:
    m = MOVED[old]
    return (
        f"{old} was moved or renamed in fdl {m.since}; use {m.new} (CHANGELOG.md, migrating from fdl 0.1; "
        f"this note goes in fdl {m.removed_in})"
    )


def moved_attribute(module: str, name: str):
    """The body of a module's ``__getattr__``: raise AttributeError, naming the new spelling if ``name`` moved."""
    old = f"{module}.{name}"
    if old in MOVED:
        raise AttributeError(message(old))
    raise AttributeError(f"module {module!r} has no attribute {name!r}")
