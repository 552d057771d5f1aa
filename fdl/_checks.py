"""Argument checks that fail early, with a message naming what was wrong and what was expected.

Shapes are static under ``jit``, so these run at trace time and cost nothing per step.
"""

from __future__ import annotations

import numpy as np


def shape_of(x) -> tuple:
    return tuple(np.shape(x))


def expect_rank(x, rank: int, what: str, layout: str = "") -> None:
    """Raise ValueError unless ``x`` has ``rank`` dimensions."""
    if np.ndim(x) != rank:
        hint = f" {layout}" if layout else ""
        raise ValueError(f"{what}: expected a {rank}-D array{hint}, got shape {shape_of(x)}")


def expect_floating(x, what: str) -> None:
    """Raise TypeError unless ``x`` holds floating-point numbers (gradients need them)."""
    dtype = x.dtype if hasattr(x, "dtype") else np.result_type(x)
    if not np.issubdtype(dtype, np.floating):
        raise TypeError(f"{what}: expected floating-point values, got dtype {dtype}; convert with x.astype('float32')")


def expect_same_shape(a, b, what: str, names: tuple[str, str] = ("predictions", "targets")) -> None:
    if shape_of(a) != shape_of(b):
        raise ValueError(
            f"{what}: {names[0]} and {names[1]} must have the same shape, got {shape_of(a)} and {shape_of(b)}"
        )


def expect_positive(value, what: str, integer: bool = False) -> None:
    kind = "a positive integer" if integer else "positive"
    ok = value > 0 and (not integer or float(value).is_integer())
    if not ok:
        raise ValueError(f"{what} must be {kind}, got {value!r}")


def expect_probability(value, what: str) -> None:
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{what} must be in (0, 1], got {value!r}")
