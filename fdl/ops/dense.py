"""The dense layer's operations: ``weight_multiply`` and ``bias_add`` (book ch. 3: WeightMultiply, BiasAdd)."""

from __future__ import annotations

import jax.numpy as jnp

from .._checks import expect_rank, shape_of
from ._op import op


def _weight_multiply_backward(g, out, x, W):
    # out = x W, so dL/dx = g W^T and dL/dW = x^T g (book: WeightMultiply._input_grad, _param_grad).
    return g @ W.T, x.T @ g


@op(_weight_multiply_backward)
def weight_multiply(x, W):
    """``x @ W`` (book ch. 3: WeightMultiply): (batch, in_features) @ (in_features, out_features).

    The output has the promoted dtype. Raises ValueError for a rank other than 2 or mismatched feature counts.

    Examples:
        >>> import jax.numpy as jnp
        >>> weight_multiply(jnp.ones((2, 3)), jnp.full((3, 1), 0.5)).tolist()
        [[1.5], [1.5]]
    """
    expect_rank(x, 2, "weight_multiply input", "(batch, features)")
    expect_rank(W, 2, "weight_multiply W", "(in_features, out_features)")
    if x.shape[1] != W.shape[0]:
        raise ValueError(
            f"weight_multiply: input has {x.shape[1]} features but W expects {W.shape[0]} "
            f"(input {shape_of(x)}, W {shape_of(W)})"
        )
    return x @ W


def _bias_add_backward(g, out, x, B):
    # out = x + B with B broadcast over the batch: dL/dx = g, dL/dB = the batch sum of g
    # (book: BiasAdd._param_grad).
    return g, jnp.sum(g, axis=0, keepdims=True)


@op(_bias_add_backward)
def bias_add(x, B):
    """``x + B`` (book ch. 3: BiasAdd): x (batch, n), B (1, n), in the promoted dtype; ``dB`` sums over the batch.

    Raises:
      ValueError: x is not 2-D, or B's shape is not ``(1, n)`` for x's ``n`` features.
    """
    expect_rank(x, 2, "bias_add input", "(batch, features)")
    if shape_of(B) != (1, x.shape[1]):
        raise ValueError(f"bias_add: B must have shape (1, {x.shape[1]}) for input {shape_of(x)}, got {shape_of(B)}")
    return x + B
