"""Dropout (book ch. 4: Dropout).

The op multiplies by a mask drawn from an explicit key (:func:`dropout_mask`). The book's form keeps each
unit with probability ``keep_prob`` in training and multiplies by ``keep_prob`` at inference; "inverted"
dropout divides by ``keep_prob`` in training instead.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._checks import expect_probability
from ._op import op

MODES = ("book", "inverted")


def _dropout_backward(g, out, x, mask):
    return g * mask, None


@op(_dropout_backward)
def dropout(x, mask):
    """``x * mask``; backward ``g * mask`` (book ch. 4: Dropout._input_grad).

    x: any shape, floating dtype; ``mask`` broadcasts against it (from :func:`dropout_mask`) and takes no
    gradient.
    """
    return x * mask


def check_mode(mode):
    """Raise ValueError unless ``mode`` is ``"book"`` or ``"inverted"``."""
    if mode not in MODES:
        raise ValueError(f"dropout mode must be one of {MODES}, got {mode!r}")


def dropout_mask(key, shape, keep_prob, *, mode="book", train=True, dtype=jnp.float32):
    """The mask :func:`dropout` multiplies by.

    Args:
      key: a ``jax.random`` key; needed in training, ignored (may be ``None``) at inference.
      shape: the mask's shape in training, normally that of the activations it multiplies.
      keep_prob: probability of keeping a unit, in (0, 1].
      mode: ``"book"`` (scale by ``keep_prob`` at inference) or ``"inverted"`` (scale by ``1 / keep_prob``
        in training).
      train: draw a random mask (``True``) or return the inference scalar (``False``).
      dtype: the mask's dtype (default float32).

    Returns:
      In training an array of ``shape`` and ``dtype`` of Bernoulli(keep_prob) draws, 0 and 1 (or 0 and
        ``1 / keep_prob``); at inference a 0-D array: ``keep_prob`` (book) or 1 (inverted).

    Raises:
      ValueError: ``keep_prob`` outside (0, 1], an unknown ``mode``, or ``key is None`` in training.

    Examples:
        >>> import jax
        >>> mask = dropout_mask(jax.random.key(0), (1000,), 0.8)  # book mode: 1 kept, 0 dropped while training
        >>> sorted(set(mask.tolist())), 0.75 < float(mask.mean()) < 0.85
        ([0.0, 1.0], True)
        >>> float(dropout_mask(None, (2,), 0.8, train=False))  # book mode at inference: one scale, keep_prob
        0.8
    """
    expect_probability(keep_prob, "dropout keep_prob")
    check_mode(mode)
    if not train:
        return jnp.asarray(keep_prob if mode == "book" else 1.0, dtype)
    if key is None:
        raise ValueError("dropout in training needs a PRNG key: pass key=jax.random.key(seed)")
    keep = jax.random.bernoulli(key, keep_prob, shape).astype(dtype)
    return keep / keep_prob if mode == "inverted" else keep
