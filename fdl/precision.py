"""The precision policy: how float32 matrix products and convolutions are computed.

On NVIDIA Ampere and newer GPUs (A100, H100, H200), XLA runs float32 matrix products and convolutions in
TF32 by default: inputs rounded to a 10-bit mantissa, about 1e-3 relative error per product. On CPUs the
backend default is full float32, and float64 is never affected. This module is the one place fdl sets it:

* ``"default"``: the backend's choice (TF32 on Ampere+ GPUs, full float32 on CPUs; bfloat16 passes on TPUs).
  **fdl keeps this by default**: it is the speed a user of the backend expects (on those GPUs TF32 tensor
  cores have several times the float32 peak throughput for large products; fdl's small models are mostly
  launch-bound, so they gain less), and training does not need the last bits of a float32 product: the
  rounding is far below SGD's noise (a run of chapter 4's deep network with dropout on an H200 gave
  96.95 +- 0.21 % over 3 seeds against 97.21 % on the CPU, issue 14). Changing the default would also change
  JAX's behaviour for the user's own code outside fdl.
* ``"highest"``: full float32 (on TPUs, float32 via several bfloat16 passes). Use it when two float32
  computations must agree to float32 rounding (comparing ``conv2d`` with ``conv2d_im2col``, comparing the
  hand-written and ``jax.grad`` gradients in float32) or for bit-level reproducibility across GPU
  generations. :mod:`fdl.testing` always runs its checks under it.
* ``"high"``, ``"tensorfloat32"``, ``"float32"``, ``"bfloat16"``: JAX's other named levels, passed through.

Usage::

    import fdl
    fdl.precision.set_matmul_precision("highest")      # for the whole program
    with fdl.precision.matmul_precision("highest"):    # for one block (traced functions compiled inside it)
        ...

Both wrap JAX's ``jax_default_matmul_precision`` option (``jax.default_matmul_precision``); it is read when a
function is traced, so a function jitted under one setting keeps it, and is retraced under another.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import jax

VALUES = ("default", "high", "highest", "tensorfloat32", "float32", "bfloat16")


def _check(value: str | None) -> str | None:
    if value is not None and value not in VALUES:
        raise ValueError(f"matmul precision must be one of {VALUES} (or None for the backend default), "
                         f"got {value!r}; 'highest' for exact float32 comparisons, 'default' for speed")
    return value


def get_matmul_precision() -> str | None:
    """The current setting: one of :data:`VALUES`, or None (never set: the backend default)."""
    return jax.config.jax_default_matmul_precision


def set_matmul_precision(value: str | None) -> None:
    """Set the float32 matmul/convolution precision for the rest of the program.

    Args:
      value: one of :data:`VALUES`, or None to go back to the backend default.

    Raises:
      ValueError: an unknown value (the message lists the known ones).
    """
    jax.config.update("jax_default_matmul_precision", _check(value))


@contextlib.contextmanager
def matmul_precision(value: str | None) -> Iterator[None]:
    """Context manager: the float32 matmul/convolution precision inside the block, restored after it.

    Functions traced (jitted) inside the block use ``value``; see :func:`set_matmul_precision`.

    Raises:
      ValueError: an unknown value (the message lists the known ones), on entering the block.
    """
    with jax.default_matmul_precision(_check(value)):
        yield
