"""The convolutional layer (book ch. 5: Conv2D layer).

Initialisation. ``weight_init="glorot"`` is Glorot normal with the convolution's fans,
``fan_in = in_channels * k * k`` and ``fan_out = out_channels * k * k`` (each input pixel of a channel feeds
``out * k * k`` products): standard deviation ``sqrt(2 / (fan_in + fan_out))``, e.g. 0.0492 for 1 -> 32
channels, k = 5. ``weight_init="book_glorot"`` reproduces the book's code (lincoln's ``Conv2D._setup_layer``;
the printed text shows only ``np.random.randn``): standard deviation ``2 / (in_channels + out_channels)``,
counting channels only and without the square root (erratum 5), e.g. 0.0606 for 1 -> 32 channels.
``"standard"`` is N(0, 1), the book's default. The layer has no bias, as the book's.
"""

from __future__ import annotations

import jax.numpy as jnp

from .._checks import expect_positive, expect_probability, expect_rank
from ..init import init_scale, normal
from ..ops import flatten as flatten_op
from ..ops import get_activation
from ..ops.conv import conv2d as conv2d_xla
from ..ops.conv import conv2d_im2col
from ..ops.conv_loops import conv_2d as conv2d_loops
from ..ops.dropout import check_mode
from .core import Layer, apply_dropout

IMPLEMENTATIONS = {"xla": conv2d_xla, "im2col": conv2d_im2col, "loops": conv2d_loops}


def conv_fans(weight_init: str, in_channels: int, out_channels: int, k: int) -> tuple[int, int]:
    """The (fan_in, fan_out) each initialiser uses for a conv kernel (see the module docstring)."""
    if weight_init == "book_glorot":
        return in_channels, out_channels
    return in_channels * k * k, out_channels * k * k


def conv2d(out_channels: int, param_size: int, activation="linear", *, weight_init: str = "standard",
           dropout: float = 1.0, dropout_mode: str = "book", flatten: bool = False,
           impl: str = "xla") -> Layer:
    """``activation(conv(x, W))``, then flatten (if ``flatten``), then dropout (if ``dropout < 1``) (book: Conv2D).

    Args:
      out_channels: output channels.
      param_size: the kernel size k (odd); stride 1, "same" padding k // 2, so H and W are kept.
      activation: ``"linear"``, ``"sigmoid"``, ``"tanh"``, ``"relu"``, ``"leaky_relu"`` or an Op.
      weight_init: ``"standard"``, ``"glorot"`` or ``"book_glorot"`` (see the module docstring).
      dropout: keep probability; 1.0 means no dropout.
      dropout_mode: ``"book"`` (scale at inference) or ``"inverted"``.
      flatten: flatten each example's output to a vector, to feed a dense layer.
      impl: ``"xla"`` (:func:`fdl.ops.conv2d`, the fast one), ``"im2col"`` (the appendix's matrix form) or
        ``"loops"`` (the chapter's loops, small inputs only).

    Params: ``{"W": (in_channels, out_channels, k, k)}``. Input ``(batch, in_channels, H, W)``; output
    ``(batch, out_channels, H, W)``, or ``(batch, out_channels * H * W)`` with ``flatten=True``.
    """
    expect_positive(out_channels, "conv2d out_channels", integer=True)
    expect_positive(param_size, "conv2d param_size", integer=True)
    if param_size % 2 == 0:
        raise ValueError(f"conv2d: param_size must be odd for 'same' padding param_size // 2, got {param_size}")
    expect_probability(dropout, "conv2d dropout (keep probability)")
    check_mode(dropout_mode)
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"conv2d: impl must be one of {sorted(IMPLEMENTATIONS)}, got {impl!r}")
    conv, act = IMPLEMENTATIONS[impl], get_activation(activation)
    init_scale(weight_init, 1, 1)  # rejects unknown names now rather than at init
    name = f"conv2d({out_channels}, {param_size}, {getattr(act, 'name', act)}{', flatten' if flatten else ''})"

    def _check_shape(input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"{name}: expects images of shape (channels, height, width) per example, "
                             f"got {tuple(input_shape)}")

    def init(key, input_shape, dtype=jnp.float32):
        _check_shape(input_shape)
        in_channels = input_shape[0]
        scale = init_scale(weight_init, *conv_fans(weight_init, in_channels, out_channels, param_size))
        return {"W": normal(key, (in_channels, out_channels, param_size, param_size), scale, dtype)}

    def apply(params, x, *, key=None, train=False, grad="manual"):
        expect_rank(x, 4, name + " input", "(batch, channels, height, width)")
        out = act(conv(x, params["W"], grad=grad), grad=grad)
        if flatten:
            out = flatten_op(out, grad=grad)
        return apply_dropout(out, dropout, key=key, train=train, grad=grad, mode=dropout_mode)

    def output_shape(input_shape):
        _check_shape(input_shape)
        _, h, w = input_shape
        return (out_channels * h * w,) if flatten else (out_channels, h, w)

    return Layer(init, apply, output_shape, name)
