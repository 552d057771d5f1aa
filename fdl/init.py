"""Weight initialisers (book ch. 3 and 4; ch. 7's PyTorch default).

A layer's ``weight_init`` (and ``bias_init``) is a name or a function. Names (fans: the layer's input and
output features; a convolution's are in :mod:`fdl.layers.conv`):

* ``"standard"``: N(0, 1), the book's default.
* ``"glorot"``: Glorot (Xavier) normal, standard deviation ``sqrt(2 / (fan_in + fan_out))``.
* ``"book_glorot"``: the book's code, ``2 / (fan_in + fan_out)`` without the square root (erratum 5).
* ``"pytorch_uniform"``: PyTorch's ``nn.Linear`` / ``nn.Conv2d`` default (book ch. 7),
  U(-1/sqrt(fan_in), 1/sqrt(fan_in)), for weights and biases alike.
* ``"zeros"``: all zeros (for biases).

A function is ``init(key, shape, dtype) -> array of that shape``, as ``jax.nn.initializers``. Kernels are
``(in, out)`` (dense) and ``(in, out, k, k)`` (conv2d); for conv2d pass ``in_axis=0, out_axis=1`` to jax's
variance-scaling initialisers.

``bias_init=None`` means "as the weights": the same named rule and fans, or zeros after a function.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

INITIALISERS = ("standard", "glorot", "book_glorot", "pytorch_uniform", "zeros")


def init_scale(weight_init: str, fan_in: int, fan_out: int) -> float:
    """The standard deviation a named initialiser draws with, for ``fan_in`` inputs and ``fan_out`` outputs.

    A Python float; fans are positive ints.

    Raises:
      ValueError: ``weight_init`` is not one of :data:`INITIALISERS`.
    """
    if weight_init == "standard":
        return 1.0
    if weight_init == "glorot":
        return math.sqrt(2.0 / (fan_in + fan_out))
    if weight_init == "book_glorot":
        return 2.0 / (fan_in + fan_out)
    if weight_init == "pytorch_uniform":
        return 1.0 / math.sqrt(3.0 * fan_in)  # U(-b, b) has standard deviation b / sqrt(3)
    if weight_init == "zeros":
        return 0.0
    raise ValueError(
        f"unknown weight_init {weight_init!r}; choose one of {INITIALISERS} or pass a function init(key, shape, dtype)"
    )


def check_initialiser(init, layer: str, arg: str = "weight_init") -> None:
    """Check, at layer construction, that ``init`` is a known name or a callable (``layer``, ``arg``: for messages).

    Raises:
      ValueError: an unknown name (the message lists the names).
      TypeError: neither a string nor callable.
    """
    if isinstance(init, str):
        if init not in INITIALISERS:
            raise ValueError(
                f"{layer}: unknown {arg} {init!r}; choose one of {INITIALISERS} or pass a function "
                "init(key, shape, dtype)"
            )
    elif not callable(init):
        raise TypeError(
            f"{layer}: {arg} must be an initialiser name {INITIALISERS} or a function "
            f"init(key, shape, dtype), got {init!r}"
        )


def normal(key, shape, scale: float, dtype=jnp.float32):
    """``scale * N(0, 1)`` of ``shape``, in ``dtype`` (book ch. 3: ``np.random.randn`` weights, scaled in ch. 4).

    ``dtype`` is floating point. The same bits eagerly and traced (see the comment in the body).
    """
    z = jax.random.normal(key, shape, dtype)
    # Traced, XLA would fold ``scale`` into jax.random.normal's sqrt(2) and round differently from the eager draw.
    if isinstance(z, jax.core.Tracer):
        z = jax.lax.optimization_barrier(z)
    return scale * z


def uniform_fan_in(key, shape, fan_in: int, dtype=jnp.float32):
    """PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) of ``shape``, in floating ``dtype`` (book ch. 7)."""
    bound = 1.0 / math.sqrt(fan_in)
    return jax.random.uniform(key, shape, dtype, -bound, bound)


def initialise(
    init: str | Callable, key, shape: tuple, fan_in: int, fan_out: int, dtype=jnp.float32, what: str = "initialiser"
):
    """Draw an array of ``shape`` with ``init``, a name of :data:`INITIALISERS` or a function.

    ``fan_in`` and ``fan_out`` serve the names; a function gets only ``shape``. Returns an array of ``shape``
    in ``dtype`` (book ch. 3-5: ``_setup_layer``).

    Raises:
      ValueError: an unknown name, or a function that returned an array of another shape.
    """
    if callable(init):
        out = jnp.asarray(init(key, tuple(shape), dtype), dtype)
        if out.shape != tuple(shape):
            raise ValueError(
                f"{what}: the initialiser {getattr(init, '__name__', init)!r} returned shape "
                f"{out.shape} for a parameter of shape {tuple(shape)}; it must return the shape it "
                "is given"
            )
        return out
    if init == "pytorch_uniform":
        return uniform_fan_in(key, shape, fan_in, dtype)
    if init == "zeros":
        return jnp.zeros(shape, dtype)
    return normal(key, shape, init_scale(init, fan_in, fan_out), dtype)


def bias_initialiser(weight_init: str | Callable, bias_init: str | Callable | None) -> str | Callable:
    """The bias rule a layer uses: ``bias_init`` if given, else the named ``weight_init``, else zeros."""
    if bias_init is not None:
        return bias_init
    return "zeros" if callable(weight_init) else weight_init
