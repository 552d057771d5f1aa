"""2-D convolution (book ch. 5: Conv2D_Op; appendix: the same op as matrix multiplication).

The book's conventions: images NCHW ``(batch, in_channels, height, width)``, kernel
``(in_channels, out_channels, k, k)`` with odd ``k``, stride 1, "same" zero padding ``k // 2``, no bias; a
cross-correlation ``out[n, o, i, j] = sum_{c, p, q} x_pad[n, c, i + p, j + q] * W[c, o, p, q]``. Images need
not be square. Three implementations, each an :class:`~fdl.ops.Op` with a hand-written backward:

* :func:`conv2d`: XLA's convolution primitive, written channels-last (NHWC) in both gradient modes, because
  XLA:CPU runs other layouts as slow loop nests inside ``lax.scan`` (jax-ml/jax#12868);
* :func:`conv2d_slices`: the k*k shifted slices of the padded images as a patch matrix, one batched matmul;
* :func:`conv2d_im2col`: the appendix's image patches times the kernel matrix.

:func:`conv2d_auto` picks one for the input at hand; :func:`channel_bias_add` adds PyTorch's per-channel bias.

Erratum 4: the book's input gradient uses the unflipped kernel and its batched kernel gradient pairs examples
in the wrong order; fdl flips the kernel and pairs each example's input with its own output gradient.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import SymbolicZero

from .._checks import expect_rank, shape_of
from ._op import Op, op


def expect_float_array(x, what: str) -> None:
    """Raise TypeError, naming ``x`` as ``what``, unless ``x`` (an array or tracer) is floating point."""
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(
            f"{what}: expected floating-point values, got dtype {x.dtype}; convert with x.astype('float32')"
        )


def check_conv_args(x, W, name: str) -> int:
    """Check the shapes and dtype :func:`conv2d` documents (messages name the op ``name``); return ``k``."""
    expect_rank(x, 4, f"{name} input", "(batch, in_channels, height, width)")
    expect_rank(W, 4, f"{name} kernel W", "(in_channels, out_channels, k, k)")
    expect_float_array(x, f"{name} input")
    k = W.shape[2]
    if W.shape[3] != k:
        raise ValueError(
            f"{name}: the kernel must be square, (in_channels, out_channels, k, k), got W of shape {shape_of(W)}"
        )
    if k % 2 == 0:
        raise ValueError(
            f"{name}: kernel size must be odd for 'same' padding k // 2, got k = {k} (W of shape {shape_of(W)})"
        )
    if x.shape[1] != W.shape[0]:
        raise ValueError(
            f"{name}: input has {x.shape[1]} channels but the kernel expects {W.shape[0]} "
            f"(input {shape_of(x)}, W {shape_of(W)})"
        )
    return k


def promote(x, W):
    """``(x, W)`` cast to their common dtype, as ``x @ W`` would promote them (XLA's conv needs one dtype)."""
    dtype = jnp.result_type(x, W)
    return x.astype(dtype), W.astype(dtype)


def _same(k: int) -> list[tuple[int, int]]:
    return [(k // 2, k // 2)] * 2


# XLA:CPU runs a convolution fast only in the channels-last form it hands to Eigen: "NHWC" images and "HWIO"
# kernels (the "canonical" form). Its pass that rewrites other convolutions into that form visits only the
# entry computation, not the body of a while loop, so inside lax.scan (a jitted epoch) a convolution in another
# form becomes a plain loop nest, many times slower (jax-ml/jax#12868). So every convolution below is written
# channels-last explicitly; outside loops XLA folds the transposes away.
_NHWC = ("NHWC", "HWIO", "NHWC")


def _conv_nhwc(lhs, rhs, k: int):
    """``lax.conv_general_dilated`` on a channels-last lhs (b, h, w, f) and an (h, w, in, out) rhs."""
    return lax.conv_general_dilated(lhs, rhs, (1, 1), _same(k), dimension_numbers=_NHWC)


# The plain forward, for jax.grad. jax differentiates a convolution by transposing it, and its transposes of a
# canonical convolution are not canonical: the input gradient reads the kernel with in and out swapped
# ("HWOI"), the kernel gradient reads the images batch-last ("CHWN"); no choice of the forward's layouts makes
# all three products canonical (each transpose rule swaps two roles). So the forward declares its derivative
# as the product rule of a bilinear map, d(conv(x, W)) = conv(dx, W) + conv(x, dW), each term written in the
# layouts whose transposes are canonical; jax.grad derives both backward convolutions from it by transposition
# (the flipped kernel, the batch as the contracted axis), as it would for lax's convolution. The tangent terms
# themselves run only under forward mode (jax.jvp).
@jax.custom_jvp
def _conv_channels_last(x, W):
    """Same-padded conv of x (batch, H, W, in) with W (k, k, in, out) -> (batch, H, W, out)."""
    return _conv_nhwc(x, W, W.shape[0])


@functools.partial(_conv_channels_last.defjvp, symbolic_zeros=True)
def _conv_channels_last_jvp(primals, tangents):
    x, W = primals
    dx, dW = tangents
    k, terms = W.shape[0], []
    if not isinstance(dx, SymbolicZero):
        # conv(dx, W) with the kernel stored (k, k, out, in): its transpose in dx is canonical, (g, HWIO).
        terms.append(
            lax.conv_general_dilated(
                dx, jnp.swapaxes(W, 2, 3), (1, 1), _same(k), dimension_numbers=("NHWC", "HWOI", "NHWC")
            )
        )
    if not isinstance(dW, SymbolicZero):
        # conv(x, dW) with x read as (in, H, W, batch) and the result (H, W, batch, out): its transpose in dW
        # is canonical, x as in_channels images of batch features convolved with g as an (H, W, batch, out)
        # kernel, the product the hand-written backward computes.
        t = lax.conv_general_dilated(
            jnp.transpose(x, (3, 1, 2, 0)),
            jnp.transpose(dW, (2, 0, 1, 3)),
            (1, 1),
            _same(k),
            dimension_numbers=("CHWN", "IHWO", "HWNC"),
        )
        terms.append(jnp.transpose(t, (2, 0, 1, 3)))
    out = _conv_nhwc(x, W, k)
    return out, sum(terms[1:], terms[0]) if terms else jnp.zeros_like(out)


def _conv2d_backward(g, out, x, W):
    k, x_dtype, W_dtype = W.shape[2], x.dtype, W.dtype
    x, W = promote(x, W)
    # Input gradient: dx[n, c] = sum_o g[n, o] correlated with the flipped W[c, o]: the same correlation with
    # the flipped kernel's out_channels as the contracted axis, kernel (k, k, out, in). The padding
    # k - 1 - k // 2 equals k // 2 for odd k. (book: Conv2D_Op._input_grad; erratum 4: the book does not flip.)
    dx = _conv_nhwc(jnp.transpose(g, (0, 2, 3, 1)), jnp.transpose(jnp.flip(W, (2, 3)), (2, 3, 1, 0)), k)
    # Kernel gradient: dW[c, o, p, q] = sum_{n, i, j} x_pad[n, c, i + p, j + q] g[n, o, i, j], a correlation
    # of the input with the output gradient in which the *batch* is the contracted axis: x is read as C
    # images with N features each, (C, H, W, N), and g as an (H, W, N, out) kernel; the k x k result
    # (C, k, k, out) is dW. (book: Conv2D_Op._param_grad.)
    dW = _conv_nhwc(jnp.transpose(x, (1, 2, 3, 0)), jnp.transpose(g, (2, 3, 0, 1)), k)
    return jnp.transpose(dx, (0, 3, 1, 2)).astype(x_dtype), jnp.transpose(dW, (0, 3, 1, 2)).astype(W_dtype)


@op(_conv2d_backward)
def conv2d(x, W):
    """Same-padded, stride-1 2-D convolution on XLA's convolution primitive (book: Conv2D_Op).

    Args:
      x: (batch, in_channels, height, width), floating point.
      W: (in_channels, out_channels, k, k), k odd.

    Returns:
      (batch, out_channels, height, width) in the promoted dtype of x and W.

    Raises:
      ValueError: x or W is not 4-D, W is not square with odd ``k``, or the channel counts differ.
      TypeError: x is not floating point.

    Backward: ``dx`` = the output gradient correlated with the flipped kernel; ``dW`` = the input correlated
    with the output gradient over the batch. ``grad="autodiff"`` derives the same channels-last products from
    a ``jax.custom_jvp`` forward (see the comment above ``_conv_channels_last``).

    Examples:
        >>> import jax.numpy as jnp
        >>> x, W = jnp.ones((1, 1, 3, 3)), jnp.ones((1, 2, 3, 3))  # one 3x3 image, two 3x3 kernels
        >>> out = conv2d(x, W)
        >>> out.shape, out[0, 0].tolist()  # "same" padding: each output sums the image under the kernel
        ((1, 2, 3, 3), [[4.0, 6.0, 4.0], [6.0, 9.0, 6.0], [4.0, 6.0, 4.0]])
    """
    check_conv_args(x, W, "conv2d")
    x, W = promote(x, W)
    out = _conv_channels_last(jnp.transpose(x, (0, 2, 3, 1)), jnp.transpose(W, (2, 3, 0, 1)))
    return jnp.transpose(out, (0, 3, 1, 2))


def _channel_bias_add_backward(g, out, x, B):
    # out = x + B with B broadcast over the batch and the pixels: dL/dx = g, dL/dB = the sum of g over the
    # batch and the pixels, one value per channel (as bias_add sums over the batch).
    return g.astype(x.dtype), jnp.sum(g, axis=(0, 2, 3), keepdims=True).astype(B.dtype)


@op(_channel_bias_add_backward)
def channel_bias_add(x, B):
    """``x + B``, one bias per channel: the bias of PyTorch's ``nn.Conv2d`` (the book's ch. 7 ConvLayer).

    Args:
      x: (batch, channels, height, width), floating point.
      B: (1, channels, 1, 1) (PyTorch's ``(channels,)`` reshaped with ``B.reshape(1, -1, 1, 1)``).

    Returns:
      (batch, channels, height, width), promoted dtype; ``dB`` sums ``g`` over the batch and the pixels.

    Raises:
      ValueError: x is not 4-D, or B is not (1, channels, 1, 1).
      TypeError: x is not floating point.
    """
    expect_rank(x, 4, "channel_bias_add input", "(batch, channels, height, width)")
    expect_float_array(x, "channel_bias_add input")
    if shape_of(B) != (1, x.shape[1], 1, 1):
        raise ValueError(
            f"channel_bias_add: B must have shape (1, {x.shape[1]}, 1, 1), one bias per channel of "
            f"the input {shape_of(x)}, got {shape_of(B)}"
        )
    return x + B


def im2col(x, k: int):
    """The appendix's image patches: (batch, C, H, W) -> (batch, H*W, C*k*k).

    Row ``i * W + j`` of example ``n`` is the k x k window of the zero-padded image centred on pixel
    ``(i, j)``, channel-major: column ``c * k*k + p * k + q`` is ``x_pad[n, c, i + p, j + q]`` (book:
    get_image_patches). ``x`` keeps its dtype; ``k`` is a Python int (odd for the "same" size).
    """
    n, c, h, w = x.shape
    return jnp.transpose(_windows(x, k), (0, 3, 4, 1, 2)).reshape(n, h * w, c * k * k)


def _windows(x, k: int):
    """(batch, C, H, W) -> (batch, C, k*k, H, W): entry ``[n, c, p * k + q, i, j]`` is ``x_pad[n, c, i + p, j + q]``,
    the k*k views of the zero-padded images shifted by each kernel offset ``(p, q)``."""
    _, _, h, w = x.shape
    m = k // 2
    x_pad = jnp.pad(x, ((0, 0), (0, 0), (m, m), (m, m)))
    return jnp.stack([x_pad[:, :, p : p + h, q : q + w] for p in range(k) for q in range(k)], axis=2)


def _col2im(d, k: int):
    """The transpose of :func:`_windows`: (batch, C, k*k, H, W) -> (batch, C, H, W), each entry added back to the
    pixel it was read from (the padding's share dropped)."""
    n, c, _, h, w = d.shape
    m = k // 2
    d_pad = jnp.zeros((n, c, h + 2 * m, w + 2 * m), d.dtype)
    for p in range(k):
        for q in range(k):
            d_pad = d_pad.at[:, :, p : p + h, q : q + w].add(d[:, :, p * k + q])
    return d_pad[:, :, m : m + h, m : m + w]


def _rows(a):
    """(batch, channels, H, W) -> (batch*H*W, channels): one row per pixel, the layout of the matmuls."""
    return jnp.transpose(a, (0, 2, 3, 1)).reshape(-1, a.shape[1])


def _unrows(a, n: int, h: int, w: int):
    """Inverse of :func:`_rows`: (batch*H*W, channels) -> (batch, channels, H, W)."""
    return jnp.transpose(a.reshape(n, h, w, -1), (0, 3, 1, 2))


def _kernel_matrix(W):
    """(in, out, k, k) -> (in*k*k, out), rows in :func:`im2col`'s column order (book: param_reshaped)."""
    c, o, k, _ = W.shape
    return jnp.transpose(W, (0, 2, 3, 1)).reshape(c * k * k, o)


def _conv2d_im2col_backward(g, out, x, W):
    n, c, h, w = x.shape
    o, k = W.shape[1], W.shape[2]
    g_rows = _rows(g)  # (batch*H*W, out)
    # Kernel gradient = patches^T @ output gradient, (C*k*k, batch*H*W) @ (batch*H*W, out), then back to
    # (in, out, k, k). (book: param_grad_matmul.)
    patches = im2col(x, k).reshape(n * h * w, c * k * k)
    dW = jnp.transpose((patches.T @ g_rows).reshape(c, k, k, o), (0, 3, 1, 2))
    # Input gradient = patches of the output gradient @ the flipped kernel with in/out swapped,
    # (batch*H*W, out*k*k) @ (out*k*k, in). (book: input_grad_matmul; erratum 4: the book does not flip.)
    flipped = jnp.transpose(jnp.flip(W, (2, 3)), (1, 0, 2, 3))  # (out, in, k, k)
    dx = im2col(g, k).reshape(n * h * w, o * k * k) @ _kernel_matrix(flipped)
    return _unrows(dx, n, h, w).astype(x.dtype), dW.astype(W.dtype)


@op(_conv2d_im2col_backward)
def conv2d_im2col(x, W):
    """:func:`conv2d` as one matrix product (book appendix: output_matmul).

    ``out = im2col(x) @ W_matrix``, (batch, H*W, C*k*k) @ (C*k*k, out_channels); backward ``dW = patches^T @ g``
    and ``dx = im2col(g) @ flipped-kernel matrix``. Shapes, dtypes and errors as :func:`conv2d`.
    """
    k = check_conv_args(x, W, "conv2d_im2col")
    n, _, h, w = x.shape
    out = im2col(x, k) @ _kernel_matrix(W)  # (batch, H*W, out)
    return jnp.transpose(out.reshape(n, h, w, W.shape[1]), (0, 3, 1, 2))


def _kernel_rows(W):
    """(in, out, k, k) -> (out, in*k*k), columns in :func:`_windows`' order, channel-major."""
    c, o, k, _ = W.shape
    return jnp.transpose(W, (1, 0, 2, 3)).reshape(o, c * k * k)


def _per_example(A, n: int):
    """A matrix repeated for each of n examples, (n, *A.shape): a batched product with the batch first keeps the
    result batch-major (NCHW); an unbatched one would put the batch between the output's axes and cost a
    transpose of the whole activation."""
    return jnp.broadcast_to(A, (n, *A.shape))


def _conv2d_slices_backward(g, out, x, W):
    k, x_dtype, W_dtype = W.shape[2], x.dtype, W.dtype
    x, W = promote(x, W)
    n, c, h, w = x.shape
    o = W.shape[1]
    g = g.reshape(n, o, h * w)  # (batch, out, H*W)
    # Kernel gradient: sum over the examples of g_n @ patches_n^T, (out, H*W) @ (H*W, C*k*k), back to
    # (in, out, k, k). (book: param_grad_matmul.)
    patches = _windows(x, k).reshape(n, c * k * k, h * w)
    dW = jnp.sum(jnp.matmul(g, jnp.swapaxes(patches, 1, 2)), axis=0)  # (out, C*k*k)
    dW = jnp.transpose(dW.reshape(o, c, k, k), (1, 0, 2, 3))
    # Input gradient: the patch matrix's gradient, W_rows^T @ g_n, (C*k*k, out) @ (out, H*W), each entry added
    # back to the pixel it was read from (col2im, the transpose of the shifted slices). Output pixel (i, j)
    # reads x_pad[i + p, j + q] through W[p, q], so pixel (a, b) receives g[a - p, b - q] W[p, q]: the output
    # gradient correlated with the flipped kernel, without flipping anything (erratum 4: the book does not flip).
    d_patches = jnp.matmul(_per_example(_kernel_rows(W).T, n), g)  # (batch, C*k*k, H*W)
    dx = _col2im(d_patches.reshape(n, c, k * k, h, w), k)
    return dx.astype(x_dtype), dW.astype(W_dtype)


@op(_conv2d_slices_backward)
def conv2d_slices(x, W):
    """:func:`conv2d` as the k*k shifted slices of the padded images and one batched matrix product.

    ``out[n] = W_rows @ patches[n]``, (out_channels, C*k*k) @ (C*k*k, H*W), NCHW as it comes (row
    ``c * k*k + p * k + q`` of ``patches[n]`` is channel ``c`` shifted by ``(p, q)``); backward
    ``dW = sum_n g_n @ patches_n^T`` and ``dx`` = ``W_rows^T @ g_n`` added back where it was read (col2im).
    Shapes, dtypes and errors as :func:`conv2d`. The patch matrix is k*k times the input, so this pays off
    only for few input channels (see :func:`conv2d_fastest`).

    Examples:
        >>> import jax.numpy as jnp
        >>> out = conv2d_slices(jnp.ones((1, 1, 3, 3)), jnp.ones((1, 2, 3, 3)))
        >>> out[0, 0].tolist()  # the same numbers as conv2d
        [[4.0, 6.0, 4.0], [6.0, 9.0, 6.0], [4.0, 6.0, 4.0]]
    """
    k = check_conv_args(x, W, "conv2d_slices")
    x, W = promote(x, W)
    n, c, h, w = x.shape
    patches = _windows(x, k).reshape(n, c * k * k, h * w)
    out = jnp.matmul(_per_example(_kernel_rows(W), n), patches)  # (batch, out, H*W)
    return out.reshape(n, W.shape[1], h, w)


def platform_of(x) -> str:
    """The platform (``"cpu"``, ``"gpu"``, ...) a computation on ``x`` runs on, known when it is traced.

    A concrete array's own device; for a tracer or a NumPy array, jax's default device (the
    ``jax_default_device`` setting, else ``jax.default_backend()``). Inputs committed to a non-default device
    under ``jax.jit`` are therefore judged by the default's platform (only the speed can differ).
    """
    if isinstance(x, jax.Array):
        try:
            return next(iter(x.devices())).platform
        except jax.errors.ConcretizationTypeError:  # a tracer: where it runs is not known yet
            pass
    device = jax.config.jax_default_device
    if device is None:
        return jax.default_backend()
    return getattr(device, "platform", device)  # a Device, or a platform name such as "cpu"


def conv2d_fastest(x) -> Op:
    """:func:`conv2d_slices` for a one-channel NCHW ``x`` on a CPU, :func:`conv2d` otherwise.

    Decided from ``x``'s shape and :func:`platform_of`, once per trace. The slices form does less work there,
    but its kernel gradient allocates scratch buffers every step, which can make it slower depending on the
    process's allocator; so the conv2d layer uses this choice only for ``impl="auto"`` (default ``"xla"``).
    """
    one_channel = jnp.ndim(x) == 4 and x.shape[1] == 1
    return conv2d_slices if one_channel and platform_of(x) == "cpu" else conv2d


def conv2d_auto(x, W, *, grad: str = "manual"):
    """:func:`conv2d` or :func:`conv2d_slices`, whichever :func:`conv2d_fastest` picks for ``x``.

    The same function up to rounding either way; shapes, dtypes and errors as :func:`conv2d` (an error names
    the op chosen). The conv2d layer's ``impl="auto"``.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> x = jax.device_put(jnp.ones((1, 1, 3, 3)), jax.devices("cpu")[0])  # one channel, on the CPU
        >>> conv2d_fastest(x).name, conv2d_fastest(jnp.ones((1, 16, 3, 3))).name
        ('conv2d_slices', 'conv2d')
        >>> conv2d_auto(x, jnp.ones((1, 2, 3, 3)))[0, 0].tolist()
        [[4.0, 6.0, 4.0], [6.0, 9.0, 6.0], [4.0, 6.0, 4.0]]
    """
    return conv2d_fastest(x)(x, W, grad=grad)
