"""Weight initialisers (book ch. 3 and 4; ch. 7's PyTorch default).

A layer's ``weight_init`` (and ``bias_init``) is a name or a function.

Names (``fan_in``/``fan_out``: the layer's input and output features; for a convolution see
:mod:`fdl.layers.conv`):

* ``"standard"``: N(0, 1), the book's default.
* ``"glorot"``: Glorot (Xavier) normal, standard deviation ``sqrt(2 / (fan_in + fan_out))``.
* ``"book_glorot"``: the book's "glorot", standard deviation ``2 / (fan_in + fan_out)`` without the square
  root (erratum 5). Kept, and named, so the book's numbers can be reproduced; it is much smaller than Glorot's.
* ``"pytorch_uniform"``: PyTorch's default for ``nn.Linear`` and ``nn.Conv2d`` (and the book's ch. 7 models),
  U(-1/sqrt(fan_in), 1/sqrt(fan_in)), for weights and biases alike.
* ``"zeros"``: all zeros (for biases).

A function is called as ``init(key, shape, dtype) -> array of that shape``, the signature of
``jax.nn.initializers``. fdl's kernels are ``(in, out)`` (dense) and ``(in, out, k, k)`` (conv2d): input
features on axis 0, output features on axis 1. ``jax.nn.initializers``' variance-scaling family
(``glorot_normal``, ``he_normal``, ``lecun_normal``, ...) assumes ``(..., in, out)`` by default, right for a
dense kernel; for conv2d pass ``in_axis=0, out_axis=1`` (its receptive field, the other axes, is then k*k).

Biases: a layer's ``bias_init=None`` means "as the weights": a named ``weight_init`` draws the bias with the
same rule and the same fans (the book's layers, and PyTorch's), a function ``weight_init`` leaves the bias at
zeros. Pass ``bias_init`` (a name or a function) to choose otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

INITIALISERS = ("standard", "glorot", "book_glorot", "pytorch_uniform", "zeros")


def init_scale(weight_init: str, fan_in: int, fan_out: int) -> float:
    """The standard deviation a named initialiser draws with, for ``fan_in`` inputs and ``fan_out`` outputs.

    A Python float (book ch. 3: N(0, 1); ch. 4: "glorot", erratum 5; ch. 7: PyTorch's uniform). Fans are
    positive ints, unchecked: ``fan_in + fan_out == 0`` (the glorot forms) or ``fan_in == 0``
    (``"pytorch_uniform"``) raises ZeroDivisionError.

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
    raise ValueError(f"unknown weight_init {weight_init!r}; choose one of {INITIALISERS} or pass a function "
                     "init(key, shape, dtype)")


def check_initialiser(init, layer: str, arg: str = "weight_init") -> None:
    """Raise now, at layer construction, unless ``init`` is a known name or a callable.

    ``layer`` and ``arg`` name the layer and its argument in the message, e.g. ``"conv2d: unknown weight_init"``.
    A callable is not inspected (its signature is checked only when ``init`` calls it).

    Raises:
      ValueError: an unknown name (the message lists the names).
      TypeError: neither a string nor callable.
    """
    if isinstance(init, str):
        if init not in INITIALISERS:
            raise ValueError(f"{layer}: unknown {arg} {init!r}; choose one of {INITIALISERS} or pass a function "
                             "init(key, shape, dtype)")
    elif not callable(init):
        raise TypeError(f"{layer}: {arg} must be an initialiser name {INITIALISERS} or a function "
                        f"init(key, shape, dtype), got {init!r}")


def normal(key, shape, scale: float, dtype=jnp.float32):
    """``scale * N(0, 1)`` of ``shape``, in ``dtype`` (book ch. 3: ``np.random.randn`` weights, scaled in ch. 4).

    ``dtype`` must be floating point (jax's ``jax.random.normal`` refuses others with its own error).

    Traced (a model's init is one jitted program), the draw passes an optimization barrier before the
    scaling: without it XLA folds ``scale`` into ``jax.random.normal``'s ``sqrt(2)`` and rounds differently
    from the eager draw.
    """
    z = jax.random.normal(key, shape, dtype)
    if isinstance(z, jax.core.Tracer):
        z = jax.lax.optimization_barrier(z)
    return scale * z


def uniform_fan_in(key, shape, fan_in: int, dtype=jnp.float32):
    """PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) of ``shape``, in ``dtype`` (book ch. 7's models).

    ``fan_in`` must be positive (0 raises ZeroDivisionError; a negative one ValueError from ``math.sqrt``),
    unchecked; ``dtype`` floating point.
    """
    bound = 1.0 / math.sqrt(fan_in)
    return jax.random.uniform(key, shape, dtype, -bound, bound)


def initialise(init: str | Callable, key, shape: tuple, fan_in: int, fan_out: int, dtype=jnp.float32,
               what: str = "initialiser"):
    """Draw an array of ``shape`` with ``init``, a name of :data:`INITIALISERS` or a function.

    ``fan_in`` and ``fan_out`` serve the names; a function computes what it needs from ``shape``. Returns
    an array of ``shape`` in ``dtype`` (a function's result is cast to ``dtype``). The book's layers draw
    their params this way (ch. 3-5 ``_setup_layer``); ch. 7's are PyTorch's.

    Raises:
      ValueError: an unknown name, or a function that returned an array of another shape.
    """
    if callable(init):
        out = jnp.asarray(init(key, tuple(shape), dtype), dtype)
        if out.shape != tuple(shape):
            raise ValueError(f"{what}: the initialiser {getattr(init, '__name__', init)!r} returned shape "
                             f"{out.shape} for a parameter of shape {tuple(shape)}; it must return the shape it "
                             "is given")
        return out
    if init == "pytorch_uniform":
        return uniform_fan_in(key, shape, fan_in, dtype)
    if init == "zeros":
        return jnp.zeros(shape, dtype)
    return normal(key, shape, init_scale(init, fan_in, fan_out), dtype)


def bias_initialiser(weight_init: str | Callable, bias_init: str | Callable | None) -> str | Callable:
    """The bias rule a layer uses: ``bias_init`` if given, else the named ``weight_init``, else zeros.

    As the book's layers (ch. 3-4: the bias drawn like the weights) and PyTorch's (ch. 7). Returns a name or
    a function; checks nothing (the layer calls :func:`check_initialiser` on the result).
    """
    if bias_init is not None:
        return bias_init
    return "zeros" if callable(weight_init) else weight_init
