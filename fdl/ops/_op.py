"""`Op`: one of the book's Operations, written once as a forward and a hand-written backward.

The book's ``Operation`` caches its input on ``self`` in ``forward`` and turns an ``output_grad`` into an
``input_grad`` (and a ``param_grad``) in ``backward``. Here the same pair is two pure functions:

* ``forward(*arrays, **static) -> out``: plain ``jax.numpy``, so ``jax.grad`` can differentiate it;
* ``backward(g, out, *arrays, **static) -> tuple``: the book's formula, one gradient per array argument
  (``None`` for an argument that takes no gradient, such as a dropout mask). What the book caches on
  ``self`` (the inputs and the output) arrive as arguments.

Cotangent dtypes (the ``custom_vjp`` contract): each gradient is returned in the dtype of its primal input,
as ``jax.grad`` does. With x64 on, float32 params and float64 data, ``x @ W`` is float64 and so is the
formula's ``x.T @ g``; :class:`Op` casts it back to float32 for ``W``, so that an optimizer state built from
float32 params keeps its dtype in both gradient modes. Integer or boolean inputs (labels) get a ``float0``
zero gradient, as JAX requires.

An ``Op`` is callable both ways, chosen explicitly by the caller::

    y = sigmoid(x)                    # hand-written backward (jax.custom_vjp)
    y = sigmoid(x, grad="autodiff")   # jax.grad differentiates the plain forward

``static`` keyword arguments (slopes, shapes, flags) are Python values, not arrays; each distinct set gets
its own ``custom_vjp`` function, built once and cached.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable

import jax
import numpy as np

GRAD_MODES = ("manual", "autodiff")


def check_grad_mode(grad: str) -> str:
    """Return ``grad`` if it names a gradient mode.

    Args:
      grad: ``"manual"`` (the hand-written backward) or ``"autodiff"`` (``jax.grad`` of the plain forward).

    Raises:
      ValueError: ``grad`` is not one of ``GRAD_MODES``; the message lists them.
    """
    if grad not in GRAD_MODES:
        raise ValueError(f"grad must be one of {GRAD_MODES}, got {grad!r}")
    return grad


class Op:
    """A forward (plain ``jnp``) and the book's backward for it, callable with ``grad="manual" | "autodiff"``.

    Mirrors the book's ``Operation`` / ``ParamOperation`` (book ch. 3). Shapes and dtypes are those of the
    wrapped forward; each gradient comes back in the dtype of its primal input (``float0`` zeros for integer
    or boolean inputs).

    Calling it raises ValueError for a ``grad`` other than ``"manual"`` / ``"autodiff"``, and (on the manual
    path, when the gradient is taken) TypeError if the backward does not return a tuple with one gradient per
    array argument; otherwise whatever the forward raises.

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
        self._defaults = {p.name: p.default for p in inspect.signature(forward).parameters.values()
                          if p.kind is p.KEYWORD_ONLY and p.default is not p.empty}

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
      A function that wraps a forward into an :class:`Op`. The returned op raises TypeError, when its
      hand-written gradient is taken, if ``backward`` returns something other than a tuple of one gradient
      per array argument.
    """

    def wrap(forward: Callable) -> Op:
        return Op(forward, backward)

    return wrap
