"""Optimizers (book ch. 3: SGD) on optax.

``fit`` accepts either an ``optax.GradientTransformation`` or an *optimizer factory*: a callable
``(epochs, steps_per_epoch) -> optax.GradientTransformation``. Factories exist because the book's
learning-rate decay is defined per epoch and needs to know how many epochs a run has, which only ``fit``
knows (book: ``Trainer.fit`` sets ``optim.max_epochs``).
"""

from __future__ import annotations

from collections.abc import Callable

import optax

from ._checks import expect_positive

OptimizerLike = optax.GradientTransformation | Callable[[int, int], optax.GradientTransformation]


def sgd(lr: float = 0.01) -> optax.GradientTransformation:
    """Plain SGD, ``p -= lr * g`` (book: SGD)."""
    expect_positive(lr, "sgd learning rate")
    return optax.sgd(lr)


def build(optimizer: OptimizerLike, epochs: int, steps_per_epoch: int) -> optax.GradientTransformation:
    """Resolve an optimizer or an optimizer factory into a GradientTransformation."""
    if isinstance(optimizer, optax.GradientTransformation):
        return optimizer
    if callable(optimizer):
        built = optimizer(epochs, steps_per_epoch)
        if isinstance(built, optax.GradientTransformation):
            return built
    raise TypeError(f"optimizer must be an optax.GradientTransformation or a factory "
                    f"(epochs, steps_per_epoch) -> GradientTransformation, got {optimizer!r}")
