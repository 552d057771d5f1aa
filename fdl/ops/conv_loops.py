"""Convolution written with loops, as the chapter first derives it (book ch. 5, for teaching).

Slow by design, for small inputs; train with :func:`fdl.ops.conv.conv2d`. Each function is an
:class:`~fdl.ops.Op` whose backward is the chapter's loop.

1-D, one kernel ``w`` of odd length ``k``, zero padding ``m = k // 2``::

    out[o]        = sum_p w[p] * x_pad[o + p]                   (book: conv_1d)
    input_grad[i] = sum_p w[p] * g_pad[i + k - 1 - p]           the flipped kernel (book: _input_grad_1d)
    param_grad[p] = sum_o x_pad[o + p] * g[o]                   (book: _param_grad_1d)

2-D: the chapter's six nested loops, with the two over output pixels written as shifted views of the
padded image.
"""

from __future__ import annotations

import jax.numpy as jnp

from .._checks import shape_of
from .._moved import moved_attribute
from ._op import op
from .conv import check_conv_args, expect_float_array


def _check_1d(x, w) -> int:
    if x.ndim not in (1, 2):
        raise ValueError(f"conv1d_loops: expected an input of shape (length,) or (batch, length), got {shape_of(x)}")
    if w.ndim != 1 or w.shape[0] % 2 == 0:
        raise ValueError(f"conv1d_loops: expected a kernel of odd length, shape (k,), got {shape_of(w)}")
    expect_float_array(x, "conv1d_loops input")
    return w.shape[0]


def _pad_last(a, m: int):
    """Zero-pad the last axis by ``m`` on both sides (book: _pad_1d, _pad_1d_batch)."""
    return jnp.pad(a, [(0, 0)] * (a.ndim - 1) + [(m, m)])


def _conv1d_loops_backward(g, out, x, w):
    k, n = w.shape[0], x.shape[-1]
    g_pad = _pad_last(g, k // 2)
    input_grad = jnp.stack([sum(w[p] * g_pad[..., i + k - 1 - p] for p in range(k)) for i in range(n)], axis=-1)
    # The batch (if any) is summed over: every row pairs its own input with its own output gradient.
    x_pad = _pad_last(x, k // 2)
    param_grad = jnp.stack([sum(jnp.sum(x_pad[..., o + p] * g[..., o]) for o in range(n)) for p in range(k)])
    return input_grad.astype(x.dtype), param_grad.astype(w.dtype)


@op(_conv1d_loops_backward)
def conv1d_loops(x, w):
    """Same-padded 1-D convolution with loops (book ch. 5: conv_1d, and its batched form).

    x: (length,) or (batch, length), floating point; w: (k,), k odd -> x's shape, in the promoted dtype. A
    batch is summed over in the kernel gradient.

    Examples:
        >>> import jax, jax.numpy as jnp  # the book's check: loss sum(out), x = [1..5], w = [1, 1, 1]
        >>> jax.grad(lambda w: conv1d_loops(jnp.arange(1.0, 6.0), w).sum())(jnp.ones(3)).tolist()
        [10.0, 15.0, 14.0]

    Raises:
      ValueError: x is not 1-D or 2-D, or w is not 1-D of odd length.
      TypeError: x is not floating point.
    """
    k = _check_1d(x, w)
    x_pad = _pad_last(x, k // 2)
    return jnp.stack([sum(w[p] * x_pad[..., o + p] for p in range(k)) for o in range(x.shape[-1])], axis=-1)


def _windows(a, k: int, h: int, w: int):
    """``win(p, q)`` -> the (h, w) view of zero-padded ``a`` at kernel offset (p, q): a[..., i + p, j + q]."""
    m = k // 2
    a_pad = jnp.pad(a, ((0, 0), (0, 0), (m, m), (m, m)))
    return lambda p, q: a_pad[:, :, p : p + h, q : q + w]


def _conv2d_loops_backward(g, out, x, W):
    c_in, c_out, k, _ = W.shape
    h, w = x.shape[2:]
    # input_grad[n, c] = sum_{o, p, q} W[c, o, p, q] * g_pad[n, o, i + k-1-p, j + k-1-q]  (flipped kernel)
    g_win = _windows(g, k, h, w)
    input_grad = jnp.stack(
        [
            sum(
                W[c, o, p, q] * g_win(k - 1 - p, k - 1 - q)[:, o]
                for o in range(c_out)
                for p in range(k)
                for q in range(k)
            )
            for c in range(c_in)
        ],
        axis=1,
    )
    # param_grad[c, o, p, q] = sum_{n, i, j} x_pad[n, c, i + p, j + q] * g[n, o, i, j]
    x_win = _windows(x, k, h, w)
    param_grad = jnp.stack(
        [
            jnp.stack(
                [
                    jnp.stack([jnp.stack([jnp.sum(x_win(p, q)[:, c] * g[:, o]) for q in range(k)]) for p in range(k)])
                    for o in range(c_out)
                ]
            )
            for c in range(c_in)
        ]
    )
    return input_grad.astype(x.dtype), param_grad.astype(W.dtype)


@op(_conv2d_loops_backward)
def conv2d_loops(x, W):
    """Same-padded 2-D convolution with loops (book ch. 5: the chapter's multi-channel, batched Conv2D).

    The same function as :func:`fdl.ops.conv.conv2d`, with its shapes, dtypes and errors.
    """
    check_conv_args(x, W, "conv2d_loops")
    c_in, c_out, k, _ = W.shape
    x_win = _windows(x, k, *x.shape[2:])
    return jnp.stack(
        [
            sum(W[c, o, p, q] * x_win(p, q)[:, c] for c in range(c_in) for p in range(k) for q in range(k))
            for o in range(c_out)
        ],
        axis=1,
    )


def __getattr__(name):
    return moved_attribute(__name__, name)
