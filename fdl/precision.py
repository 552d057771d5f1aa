"""The precision policy: how float32 matrix products and convolutions are computed.

On NVIDIA Ampere and newer GPUs XLA runs float32 products in TF32 by default (a 10-bit mantissa, about 1e-3
relative error per product); CPUs compute full float32; float64 is never affected. The values:

* ``"default"``: the backend's choice, which fdl keeps: it is the speed users of the backend expect, and
  the rounding is far below SGD's noise.
* ``"highest"``: full float32, for comparing two float32 computations to float32 rounding (e.g. the
  hand-written and ``jax.grad`` gradients; :mod:`fdl.testing` always runs under it) or for reproducibility
  across GPU generations.
* ``"high"``, ``"tensorfloat32"``, ``"float32"``, ``"bfloat16"``: JAX's other levels, passed through.

Both setters wrap JAX's ``jax_default_matmul_precision``, read when a function is traced::

    fdl.precision.set_matmul_precision("highest")      # for the whole program
    with fdl.precision.matmul_precision("highest"):    # for functions traced inside the block
        ...
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import jax

VALUES = ("default", "high", "highest", "tensorfloat32", "float32", "bfloat16")


def _check(value: str | None) -> str | None:
    if value is not None and value not in VALUES:
        raise ValueError(
            f"matmul precision must be one of {VALUES} (or None for the backend default), "
            f"got {value!r}; 'highest' for exact float32 comparisons, 'default' for speed"
        )
    return value


def get_matmul_precision() -> str | None:
    """The current setting: one of :data:`VALUES`, or None (never set: the backend default)."""
    return jax.config.jax_default_matmul_precision


def set_matmul_precision(value: str | None) -> None:
    """Set the float32 matmul/convolution precision for the rest of the program.

    Args:
      value: one of :data:`VALUES`, or None to go back to the backend default.

    Raises:
      ValueError: an unknown value.
    """
    jax.config.update("jax_default_matmul_precision", _check(value))


@contextlib.contextmanager
def matmul_precision(value: str | None) -> Iterator[None]:
    """Context manager: the float32 matmul/convolution precision inside the block, restored after it.

    Raises:
      ValueError: an unknown value, on entering the block.
    """
    with jax.default_matmul_precision(_check(value)):
        yield
