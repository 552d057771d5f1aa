"""The convolutional layer (book ch. 5: Conv2D layer).

The initialisers are :mod:`fdl.init`'s, with the convolution's fans ``fan_in = in_channels * k * k`` and
``fan_out = out_channels * k * k``; ``"book_glorot"`` follows the book's code (lincoln's
``Conv2D._setup_layer``), which counts channels only, ``2 / (in_channels + out_channels)`` (erratum 5).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from .._checks import expect_positive, expect_probability, expect_rank
from ..init import bias_initialiser, check_initialiser, initialise
from ..ops import flatten as flatten_op
from ..ops import get_activation
from ..ops.conv import channel_bias_add, conv2d_auto, conv2d_im2col, conv2d_slices
from ..ops.conv import conv2d as conv2d_xla
from ..ops.conv_loops import conv2d_loops
from ..ops.dropout import check_mode
from .core import Layer, apply_dropout

IMPLEMENTATIONS = {
    "auto": conv2d_auto,
    "xla": conv2d_xla,
    "slices": conv2d_slices,
    "im2col": conv2d_im2col,
    "loops": conv2d_loops,
}


def conv_fans(weight_init: str | Callable, in_channels: int, out_channels: int, k: int) -> tuple[int, int]:
    """The (fan_in, fan_out) a named initialiser uses for a conv kernel (see the module docstring)."""
    if weight_init == "book_glorot":
        return in_channels, out_channels
    return in_channels * k * k, out_channels * k * k


def conv2d(
    out_channels: int,
    param_size: int,
    activation="linear",
    *,
    weight_init: str | Callable = "standard",
    use_bias: bool = False,
    bias_init: str | Callable | None = None,
    keep_prob: float = 1.0,
    dropout_mode: str = "book",
    flatten: bool = False,
    impl: str = "xla",
) -> Layer:
    """``activation(conv(x, W) [+ B])``, then flatten, then dropout when ``keep_prob < 1`` (book ch. 5: Conv2D).

    Args:
      out_channels: output channels.
      param_size: the kernel size k (odd); stride 1, "same" padding k // 2, so H and W are kept.
      activation: ``"linear"``, ``"sigmoid"``, ``"tanh"``, ``"relu"``, ``"leaky_relu"`` or an Op.
      weight_init: a name of :mod:`fdl.init` (default ``"standard"``) or a function ``init(key, shape, dtype)``.
      use_bias: add a bias per output channel, ``B: (1, out_channels, 1, 1)`` (PyTorch's ``nn.Conv2d``, the
        book's ch. 7); the book's ch. 5 Conv2D has none.
      bias_init: with ``use_bias``: ``None`` (as the weights, see :mod:`fdl.init`), a name or a function.
      keep_prob: the probability of keeping each unit (dropout); 1.0: no dropout.
      dropout_mode: ``"book"`` (scale at inference) or ``"inverted"``.
      flatten: flatten each example's output to a vector, to feed a dense layer.
      impl: the convolution op, the same function up to rounding: ``"xla"`` (:func:`fdl.ops.conv2d`),
        ``"slices"``, ``"auto"`` (:func:`fdl.ops.conv.conv2d_fastest`), ``"im2col"`` or ``"loops"`` (see
        :mod:`fdl.ops.conv`).

    Params ``{"W": (in_channels, out_channels, k, k)}`` in ``init``'s dtype (float32 by default). Input
    ``(batch, in_channels, H, W)``, floating point; output ``(batch, out_channels, H, W)`` (flattened with
    ``flatten=True``) in the promoted dtype. ``init`` and ``apply`` raise the ops' and initialisers' errors.

    Raises:
      ValueError: ``out_channels`` or ``param_size`` not a positive integer, an even ``param_size``,
        ``keep_prob`` outside (0, 1], an unknown ``dropout_mode``, ``impl``, ``activation`` or initialiser
        name, or ``bias_init`` without ``use_bias``.
      TypeError: ``use_bias`` not a bool, or an initialiser neither a name nor a function.
    """
    expect_positive(out_channels, "conv2d out_channels", integer=True)
    expect_positive(param_size, "conv2d param_size", integer=True)
    if param_size % 2 == 0:
        raise ValueError(f"conv2d: param_size must be odd for 'same' padding param_size // 2, got {param_size}")
    expect_probability(keep_prob, "conv2d keep_prob")
    check_mode(dropout_mode)
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"conv2d: impl must be one of {sorted(IMPLEMENTATIONS)}, got {impl!r}")
    conv, act = IMPLEMENTATIONS[impl], get_activation(activation)
    check_initialiser(weight_init, "conv2d")  # rejects unknown names now rather than at init
    if not isinstance(use_bias, bool):
        raise TypeError(f"conv2d: use_bias must be True or False, got {use_bias!r}")
    if bias_init is not None and not use_bias:
        raise ValueError("conv2d: bias_init was given but use_bias is False; pass use_bias=True for a bias")
    bias_init = bias_initialiser(weight_init, bias_init)
    check_initialiser(bias_init, "conv2d", "bias_init")
    name = (
        f"conv2d({out_channels}, {param_size}, {getattr(act, 'name', act)}{', bias' if use_bias else ''}"
        f"{', flatten' if flatten else ''})"
    )

    def _check_shape(input_shape):
        if len(input_shape) != 3:
            raise ValueError(
                f"{name}: expects images of shape (channels, height, width) per example, got {tuple(input_shape)}"
            )

    def init(key, input_shape, dtype=jnp.float32):
        _check_shape(input_shape)
        in_channels, k = input_shape[0], param_size
        shape = (in_channels, out_channels, k, k)
        if not use_bias:  # one key for W, as before the bias existed: the same draws as ever
            return {
                "W": initialise(
                    weight_init,
                    key,
                    shape,
                    *conv_fans(weight_init, in_channels, out_channels, k),
                    dtype,
                    name + " weight_init",
                )
            }
        kw, kb = jax.random.split(key)
        return {
            "W": initialise(
                weight_init,
                kw,
                shape,
                *conv_fans(weight_init, in_channels, out_channels, k),
                dtype,
                name + " weight_init",
            ),
            "B": initialise(
                bias_init,
                kb,
                (1, out_channels, 1, 1),
                *conv_fans(bias_init, in_channels, out_channels, k),
                dtype,
                name + " bias_init",
            ),
        }

    def apply(params, x, *, key=None, train=False, grad="manual"):
        expect_rank(x, 4, name + " input", "(batch, channels, height, width)")
        out = conv(x, params["W"], grad=grad)
        if use_bias:
            out = channel_bias_add(out, params["B"], grad=grad)
        out = act(out, grad=grad)
        if flatten:
            out = flatten_op(out, grad=grad)
        return apply_dropout(out, keep_prob, key=key, train=train, grad=grad, mode=dropout_mode)

    def output_shape(input_shape):
        _check_shape(input_shape)
        _, h, w = input_shape
        return (out_channels * h * w,) if flatten else (out_channels, h, w)

    return Layer(init, apply, output_shape, name)
