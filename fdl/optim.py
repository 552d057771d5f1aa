"""Optimizers and learning-rate decay (book ch. 3: SGD; ch. 4: SGDMomentum and decay; ch. 6: AdaGrad), on optax.

``fit`` takes an ``optax.GradientTransformation`` or an *optimizer factory*
``(epochs, steps_per_epoch) -> GradientTransformation``: the book's decay is per epoch and needs the run's
length, which only ``fit`` knows (book: ``Trainer.fit`` sets ``optim.max_epochs``). Where the book's rule
is optax's, optax is used as it is; the book's momentum and AdaGrad differ and are written here.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from ._checks import expect_positive

OptimizerLike = optax.GradientTransformation | Callable[[int, int], optax.GradientTransformation]
DECAY_TYPES = ("linear", "exponential")
_CONSTRUCTORS: dict[Callable, str] = {}  # fdl's optimizer constructors -> an example call, for build's message


def _constructor(example: str):
    """Register an optimizer constructor of this module, so that :func:`build` knows it when passed uncalled."""

    def register(fn):
        _CONSTRUCTORS[fn] = example
        return fn

    return register


def epoch_learning_rates(lr: float, final_lr: float | None, decay_type: str | None, epochs: int) -> list[float]:
    """The learning rate of each epoch, from ``lr`` (first epoch) to ``final_lr`` (last epoch).

    Linear: ``lr -= (lr - final_lr) / (epochs - 1)`` after every epoch; exponential:
    ``lr *= (final_lr / lr) ** (1 / (epochs - 1))`` (book: ``Optimizer._setup_decay``, ``_decay_lr``).
    With one epoch there is nothing to decay: the rate is ``lr`` (the book divides by zero, erratum 6).

    Args:
      lr: the first epoch's rate, > 0.
      final_lr: the last epoch's rate, > 0, or ``None`` for no decay.
      decay_type: ``"linear"``, ``"exponential"``, or ``None`` for no decay.
      epochs: the number of epochs, a positive integer.

    Returns:
      A list of ``epochs`` Python floats.

    Raises:
      ValueError: ``lr``, ``final_lr`` or ``epochs`` not positive (``epochs`` not an integer), only one of
        ``final_lr`` and ``decay_type`` given, or an unknown ``decay_type``.

    Examples:
        >>> [round(lr, 4) for lr in epoch_learning_rates(0.1, 0.05, "linear", 3)]
        [0.1, 0.075, 0.05]
    """
    expect_positive(lr, "learning rate")
    expect_positive(epochs, "epochs", integer=True)
    if decay_type is None or final_lr is None:
        if (decay_type is None) != (final_lr is None):
            raise ValueError(
                "learning-rate decay needs both final_lr and decay_type "
                f"(got final_lr={final_lr!r}, decay_type={decay_type!r})"
            )
        return [lr] * epochs
    expect_positive(final_lr, "final_lr")
    if decay_type not in DECAY_TYPES:
        raise ValueError(f"decay_type must be one of {DECAY_TYPES}, got {decay_type!r}")
    if epochs == 1:
        return [lr]
    if decay_type == "linear":
        step = (lr - final_lr) / (epochs - 1)
        return [lr - e * step for e in range(epochs)]
    ratio = (final_lr / lr) ** (1.0 / (epochs - 1))
    return [lr * ratio**e for e in range(epochs)]


def per_epoch_schedule(
    lr: float, final_lr: float | None, decay_type: str | None, *, epochs: int, steps_per_epoch: int
) -> optax.Schedule:
    """An optax schedule (step -> 0-D rate) holding each of :func:`epoch_learning_rates` for ``steps_per_epoch`` steps.

    Book ch. 4: ``Optimizer._decay_lr``. Steps past the last epoch keep its rate.

    Raises:
      ValueError: ``steps_per_epoch`` not a positive integer, or any of :func:`epoch_learning_rates`' errors.
    """
    expect_positive(steps_per_epoch, "steps_per_epoch", integer=True)
    rates = jnp.asarray(epoch_learning_rates(lr, final_lr, decay_type, epochs))

    def schedule(step):
        return rates[jnp.minimum(step // steps_per_epoch, epochs - 1)]

    return schedule


class Decaying:
    """An optimizer factory ``(epochs, steps_per_epoch) -> GradientTransformation`` with per-epoch decay.

    ``make`` receives the :func:`per_epoch_schedule` once ``fit`` knows the run's length (book ch. 4:
    ``Optimizer._setup_decay``).

    Raises:
      ValueError: :func:`epoch_learning_rates`' errors for ``lr``, ``final_lr`` and ``decay_type``.
    """

    def __init__(
        self,
        make: Callable[[optax.Schedule], optax.GradientTransformation],
        name: str,
        lr: float,
        final_lr: float,
        decay_type: str,
    ):
        epoch_learning_rates(lr, final_lr, decay_type, 2)  # validate now, not at fit time
        self.make, self.name, self.lr, self.final_lr, self.decay_type = make, name, lr, final_lr, decay_type

    def __call__(self, epochs: int, steps_per_epoch: int) -> optax.GradientTransformation:
        return self.make(
            per_epoch_schedule(self.lr, self.final_lr, self.decay_type, epochs=epochs, steps_per_epoch=steps_per_epoch)
        )

    def __repr__(self) -> str:
        return f"{self.name}(lr={self.lr}, final_lr={self.final_lr}, decay_type={self.decay_type!r})"


@_constructor("fdl.optim.sgd(0.01)")
def sgd(lr: float = 0.01, *, final_lr: float | None = None, decay_type: str | None = None) -> OptimizerLike:
    """Plain SGD, ``p -= lr * g`` (book ch. 3: SGD), optionally with per-epoch decay to ``final_lr`` (ch. 4).

    Returns ``optax.sgd(lr)`` without decay, a :class:`Decaying` factory with it.

    Raises:
      ValueError: :func:`epoch_learning_rates`' errors for ``lr``, ``final_lr`` and ``decay_type``.
    """
    epoch_learning_rates(lr, final_lr, decay_type, 2)
    if decay_type is None:
        return optax.sgd(lr)
    return Decaying(optax.sgd, "sgd", lr, final_lr, decay_type)


@_constructor("fdl.optim.book_momentum(0.01)")
def book_momentum(learning_rate: float | optax.Schedule, mu: float = 0.9) -> optax.GradientTransformation:
    """The book's momentum: ``v = mu * v + lr_t * g; p -= v`` (book: SGDMomentum).

    The rate is applied *before* the velocity is accumulated; ``optax.sgd(lr, momentum=mu)`` applies it
    after, which is the same only while the rate is constant.

    Args:
      learning_rate: a float, or an optax schedule ``step -> rate``.
      mu: the momentum, in [0, 1).

    Returns:
      An ``optax.GradientTransformation`` whose state holds one velocity per param.

    Raises:
      ValueError: ``mu`` outside [0, 1).
    """
    if not 0.0 <= mu < 1.0:
        raise ValueError(f"momentum mu must be in [0, 1), got {mu!r}")
    scale = (
        optax.scale_by_schedule(lambda step: -learning_rate(step))
        if callable(learning_rate)
        else optax.scale(-learning_rate)
    )
    return optax.chain(scale, optax.trace(decay=mu, nesterov=False))


@_constructor("fdl.optim.momentum(0.01, 0.9)")
def momentum(
    lr: float = 0.01, mu: float = 0.9, *, final_lr: float | None = None, decay_type: str | None = None
) -> OptimizerLike:
    """The book's SGD with momentum (:func:`book_momentum`), optionally with per-epoch decay to ``final_lr``.

    Book ch. 4: SGDMomentum. Returns a transformation without decay, a :class:`Decaying` factory with it.

    Raises:
      ValueError: :func:`epoch_learning_rates`' errors, or ``mu`` outside [0, 1) (with decay: when called).
    """
    epoch_learning_rates(lr, final_lr, decay_type, 2)
    if decay_type is None:
        return book_momentum(lr, mu)
    return Decaying(lambda schedule: book_momentum(schedule, mu), f"momentum(mu={mu})", lr, final_lr, decay_type)


class AdaGradState(NamedTuple):
    """:func:`adagrad`'s state: ``sum_squares``, a pytree like the params (book ch. 6: AdaGrad)."""

    sum_squares: optax.Updates


@_constructor("fdl.optim.adagrad(0.01)")
def adagrad(lr: float = 0.01, eps: float = 1e-7) -> optax.GradientTransformation:
    """The book's AdaGrad: ``s += eps + g^2; p -= lr * g / sqrt(s)`` with ``s`` starting at 0 (book: AdaGrad).

    ``optax.adagrad`` differs: its accumulator starts at 0.1 and ``eps`` is added outside the square root.

    Raises:
      ValueError: ``lr`` or ``eps`` not positive.
    """
    expect_positive(lr, "adagrad learning rate")
    expect_positive(eps, "adagrad eps")

    def init(params):
        return AdaGradState(jax.tree.map(jnp.zeros_like, params))

    def update(updates, state, params=None):
        sums = jax.tree.map(lambda s, g: s + eps + g * g, state.sum_squares, updates)
        updates = jax.tree.map(lambda g, s: -lr * g / jnp.sqrt(s), updates, sums)
        return updates, AdaGradState(sums)

    return optax.GradientTransformation(init, update)


@_constructor("fdl.optim.clip(2.0)")
def clip(max_delta: float = 2.0) -> optax.GradientTransformation:
    """Element-wise gradient clipping to ``[-max_delta, max_delta]`` (book ch. 6), i.e. ``optax.clip``.

    Chain it before the optimizer: ``optax.chain(clip(2.0), adagrad(0.01))``.

    Raises:
      ValueError: ``max_delta`` not positive.
    """
    expect_positive(max_delta, "clip max_delta")
    return optax.clip(max_delta)


def uncalled_constructor(optimizer) -> str | None:
    """The message for an optimizer *constructor* passed where an optimizer belongs, else None.

    Recognises fdl's constructors (by identity) and optax's (from the ``optax`` package, or a first parameter
    named ``learning_rate``), also inside ``functools.partial``; such a callable would otherwise be taken for
    an ``(epochs, steps_per_epoch)`` factory.
    """
    if isinstance(optimizer, optax.GradientTransformation | Decaying) or not callable(optimizer):
        return None
    fn = optimizer.func if isinstance(optimizer, functools.partial) else optimizer
    if fn in _CONSTRUCTORS:
        name = f"fdl.optim.{fn.__name__}"
        example = _CONSTRUCTORS[fn]
    elif _is_optax_constructor(fn):
        name = f"optax.{getattr(fn, '__name__', 'optimizer')}"
        example = f"{name}(0.001)"
    else:
        return None
    return (
        f"optimizer is {name} itself, not an optimizer: pass {example}, not {name} (call it with the "
        "learning rate; a bare constructor would be read as an (epochs, steps_per_epoch) factory)"
    )


def _is_optax_constructor(fn) -> bool:
    if (getattr(fn, "__module__", None) or "").split(".")[0] == "optax":
        return True
    try:
        params = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return False
    return bool(params) and params[0] == "learning_rate"


def build(optimizer: OptimizerLike, epochs: int, steps_per_epoch: int) -> optax.GradientTransformation:
    """Resolve an optimizer or an optimizer factory into a GradientTransformation.

    The book's ``Trainer.fit`` tells its optimizer the run's length the same way (ch. 4: ``optim.max_epochs``).

    Args:
        optimizer: an ``optax.GradientTransformation`` (returned as it is), or a factory
            ``(epochs, steps_per_epoch) -> GradientTransformation`` such as :class:`Decaying` (called).
        epochs: the run's number of epochs, passed to a factory.
        steps_per_epoch: the run's number of steps (batches) per epoch, passed to a factory.

    Raises:
        TypeError: ``optimizer`` is a constructor passed uncalled (e.g. ``optax.adam``, see
            :func:`uncalled_constructor`), or neither a transformation nor a factory returning one.
    """
    if isinstance(optimizer, optax.GradientTransformation):
        return optimizer
    message = uncalled_constructor(optimizer)
    if message is not None:
        raise TypeError(message)
    if callable(optimizer):
        built = optimizer(epochs, steps_per_epoch)
        if isinstance(built, optax.GradientTransformation):
            return built
    raise TypeError(
        f"optimizer must be an optax.GradientTransformation or a factory "
        f"(epochs, steps_per_epoch) -> GradientTransformation, got {optimizer!r}"
    )


__all__ = [
    "sgd",
    "momentum",
    "book_momentum",
    "adagrad",
    "clip",
    "epoch_learning_rates",
    "per_epoch_schedule",
    "Decaying",
    "build",
    "uncalled_constructor",
]
