"""The train step (book ch. 3: ``Trainer`` calls ``net.train_batch`` then ``optim.step``), as one pure function.

A *loss function* is ``loss_fn(params, batch, key, aux) -> (loss, aux)``: the scalar to minimise on one
``batch`` (any pytree of arrays, e.g. ``(x, y)``), with ``key`` feeding dropout and ``aux`` whatever the
model carries between batches (see :class:`~fdl.train.TrainState`). :func:`model_loss` builds one for a
layer model and a loss op; :func:`fdl.recurrent.char_loss_fn` for the character models.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import optax

from ..ops._op import check_grad_mode
from ..optim import uncalled_constructor
from .state import TrainState


def model_loss(model, loss, *, grad: str = "manual") -> Callable:
    """``loss_fn(params, (x, y), key, aux) -> (loss, aux)`` for a :class:`~fdl.layers.Layer` and a loss op
    (book ch. 3: ``NeuralNetwork.train_batch``'s forward and loss).

    The model runs in training mode (dropout fed by ``key``); ``grad`` (``"manual"``: the hand-written VJPs,
    ``"autodiff"``: ``jax.grad`` of the plain forward) applies to model and loss alike; ``aux`` passes
    through. ``x``: ``(batch, *input_shape)``; the loss is 0-D.

    Raises:
      ValueError: a ``grad`` other than ``"manual"`` / ``"autodiff"``.
    """
    check_grad_mode(grad)

    def loss_fn(params, batch, key, aux=None):
        x, y = batch
        return loss(model.apply(params, x, key=key, train=True, grad=grad), y, grad=grad), aux

    return loss_fn


def make_train_step(loss_fn: Callable, optimizer: optax.GradientTransformation) -> Callable:
    """The train step ``step(state, batch, key) -> (state, loss)``, not yet jitted (book ch. 3: ``Trainer``'s
    ``net.train_batch`` then ``optim.step``).

    The gradient of ``loss_fn`` (a loss function, see the module docstring; e.g. :func:`model_loss`) with
    respect to ``params`` goes through ``optimizer``. Jit the step to call it alone, or scan it with
    :func:`~fdl.train.make_chunk`. The new params keep the old shapes and dtypes; ``loss`` is ``loss_fn``'s.

    Raises:
      TypeError: a model (anything with ``init`` and ``apply``) as ``loss_fn``; an optimizer that is not an
        optax ``GradientTransformation`` (``optax.adam`` uncalled, or an fdl decay factory: see
        :func:`fdl.optim.build`).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from fdl import dense, mean_squared_error
        >>> from fdl.optim import sgd
        >>> model = dense(1)
        >>> params = model.init(jax.random.key(0), (2,))
        >>> tx = sgd(0.1)
        >>> step = make_train_step(model_loss(model, mean_squared_error), tx)
        >>> state = TrainState(params, tx.init(params))
        >>> x, y = jnp.ones((4, 2)), jnp.zeros((4, 1))
        >>> state, loss0 = step(state, (x, y), jax.random.key(1))
        >>> state, loss1 = step(state, (x, y), jax.random.key(2))
        >>> bool(loss1 < loss0)
        True
    """
    if hasattr(loss_fn, "init") and hasattr(loss_fn, "apply"):
        raise TypeError(
            "make_train_step: loss_fn is a model (it has .init and .apply), not a loss function; pass "
            "make_train_step(fdl.train.model_loss(model, loss, grad=g), optimizer), and compile the step "
            "it returns: jax.jit(step), or fdl.train.make_chunk for many steps as one program"
        )
    if not isinstance(optimizer, optax.GradientTransformation):
        message = uncalled_constructor(optimizer)
        if message:
            raise TypeError(f"make_train_step: {message}")
        raise TypeError(
            f"make_train_step: optimizer must be an optax GradientTransformation, got {optimizer!r} "
            "(an fdl decay factory needs (epochs, steps_per_epoch): fdl.optim.build(opt, epochs, steps))"
        )

    def step(state: TrainState, batch, key):
        (value, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, batch, key, state.aux)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        return state._replace(params=optax.apply_updates(state.params, updates), opt_state=opt_state, aux=aux), value

    return step
