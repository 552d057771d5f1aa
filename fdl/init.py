"""Weight initialisers (book ch. 3 and 4).

* ``"standard"``: N(0, 1), the book's default.
* ``"glorot"``: Glorot (Xavier) normal, standard deviation ``sqrt(2 / (fan_in + fan_out))``.
* ``"book_glorot"``: the book's "glorot", standard deviation ``2 / (fan_in + fan_out)`` without the square
  root (erratum 5). Kept, and named, so the book's numbers can be reproduced; it is much smaller than Glorot's.

As in the book, a layer draws its weights *and* its bias with the same scale.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

INITIALISERS = ("standard", "glorot", "book_glorot")


def init_scale(weight_init: str, fan_in: int, fan_out: int) -> float:
    """The standard deviation a named initialiser uses for a layer with ``fan_in`` inputs, ``fan_out`` outputs."""
    if weight_init == "standard":
        return 1.0
    if weight_init == "glorot":
        return math.sqrt(2.0 / (fan_in + fan_out))
    if weight_init == "book_glorot":
        return 2.0 / (fan_in + fan_out)
    raise ValueError(f"unknown weight_init {weight_init!r}; choose one of {INITIALISERS}")


def normal(key, shape, scale: float, dtype=jnp.float32):
    """``scale * N(0, 1)`` of ``shape``."""
    return scale * jax.random.normal(key, shape, dtype)
