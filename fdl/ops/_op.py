"""`Op`: one of the book's Operations (ch. 3), a plain forward and a hand-written backward.

The book's ``Operation`` caches its input on ``self``; here forward and backward are pure functions:

* ``forward(*arrays, **static) -> out``: plain ``jax.numpy``, so ``jax.grad`` can differentiate it;
* ``backward(g, out, *arrays, **static) -> tuple``: the book's formula, one gradient per array argument
  (``None`` for one that takes no gradient, such as a dropout mask).

Each gradient comes back in the dtype of its primal input, as ``jax.grad`` does (``float0`` zeros for integer
or boolean inputs). Callers choose the path::

    y = sigmoid(x)                    # hand-written backward (jax.custom_vjp)
    y = sigmoid(x, grad="autodiff")   # jax.grad differentiates the plain forward

``static`` keyword arguments are Python values; each distinct set gets its own cached ``custom_vjp``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable

import jax
import numpy as np

GRAD_MODES = ("manual", "autodiff")


def check_grad_mode(grad: str) -> str:
    """Return ``grad`` if it is ``"manual"`` or ``"autodiff"``; ValueError otherwise."""
    if grad not in GRAD_MODES:
        raise ValueError(f"grad must be one of {GRAD_MODES}, got {grad!r}")
    return grad


class Op:
    """A forward and the book's backward for it, callable with ``grad="manual" | "autodiff"`` (book ch. 3).

    Raises ValueError for another ``grad``, and TypeError (when the manual gradient is taken) if the backward
    does not return one gradient per array argument.

    Attributes:
      name: the op's name, used in error messages.
      forward: the plain forward; ``jax.grad`` of it is the "autodiff" path.
      backward: ``(g, out, *arrays, **static) -> tuple of input gradients``, the hand-written VJP.
    """

    def __init__(self, forward: Callable, backward: Callable, name: str | None = None):
        self.forward = forward
        self.backward = backward
        self.name = name or forward.__name__
        functools.update_wrapper(self, forward)
        # Keyword-only defaults of the forward (e.g. leaky_relu's slope) are passed to the backward too.
        self._defaults = {
            p.name: p.default
            for p in inspect.signature(forward).parameters.values()
            if p.kind is p.KEYWORD_ONLY and p.default is not p.empty
        }

    @functools.cache  # noqa: B019 - one custom_vjp per (op, static config), built once
    def _manual(self, static: tuple) -> Callable:
        kwargs = dict(static)
        forward = functools.partial(self.forward, **kwargs)

        def fwd(*arrays):
            out = forward(*arrays)
            return out, (arrays, out)

        def bwd(residuals, g):
            arrays, out = residuals
            grads = self.backward(g, out, *arrays, **kwargs)
            if not isinstance(grads, tuple) or len(grads) != len(arrays):
                raise TypeError(f"{self.name}: backward must return one gradient per array argument")
            return tuple(_like_primal(gr, a) for gr, a in zip(grads, arrays, strict=True))

        f = jax.custom_vjp(forward)
        f.defvjp(fwd, bwd)
        return f

    def manual(self, *arrays, **static):
        """The op with its hand-written backward (``jax.custom_vjp``)."""
        return self._manual(tuple(sorted({**self._defaults, **static}.items())))(*arrays)

    def __call__(self, *arrays, grad: str = "manual", **static):
        if check_grad_mode(grad) == "manual":
            return self.manual(*arrays, **static)
        return self.forward(*arrays, **static)

    def __repr__(self) -> str:
        return f"Op({self.name})"

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other) -> bool:
        return self is other


def _like_primal(grad, primal):
    """``grad`` in the dtype of ``primal``: the ``custom_vjp`` contract (``float0`` zeros for integer inputs)."""
    if grad is None:
        return None
    dtype = jax.numpy.result_type(primal)
    if not jax.numpy.issubdtype(dtype, jax.numpy.inexact):
        return np.zeros(np.shape(primal), jax.dtypes.float0)
    return grad.astype(dtype) if grad.dtype != dtype else grad


def op(backward: Callable) -> Callable[[Callable], Op]:
    """Decorator: ``@op(backward)`` on a plain forward makes it an :class:`Op` (book ch. 3: Operation).

    Args:
      backward: ``backward(g, out, *arrays, **static) -> tuple``, one gradient per array argument of the
        forward (``None`` for one that takes no gradient), each of that argument's shape; ``g`` has the
        forward output's shape.

    Returns:
      A function that wraps a forward into an :class:`Op`.
    """

    def wrap(forward: Callable) -> Op:
        return Op(forward, backward)

    return wrap
