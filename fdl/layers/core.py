"""Layers as pure functions, and their serial composition (book ch. 3: Layer, NeuralNetwork).

A :class:`Layer` is three pure functions over a parameter pytree; hyperparameters live in the closure:

* ``init(key, input_shape, dtype=float32) -> params``: ``input_shape`` is *one example's* shape (no batch
  axis), e.g. ``(13,)`` or ``(1, 28, 28)``;
* ``apply(params, x, *, key=None, train=False, grad="manual") -> y``: ``x`` has a leading batch axis;
  ``grad`` picks the hand-written backward (``"manual"``) or ``jax.grad`` (``"autodiff"``); ``key`` feeds
  dropout when ``train`` is true;
* ``output_shape(input_shape) -> shape``: one example's output shape.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from .._checks import expect_probability
from ..ops import dropout as dropout_op
from ..ops import dropout_mask
from ..ops import flatten as flatten_op
from ..ops._op import check_grad_mode
from ..ops.dropout import check_mode
from ..ops.reshape import unflatten as unflatten_op


class Layer(NamedTuple):
    """``init``, ``apply`` and ``output_shape`` of one layer (or of a whole model built by :func:`serial`).

    The book's ``Layer`` (ch. 3) with the params kept outside; see the module docstring for the three functions.
    """

    init: Callable
    apply: Callable
    output_shape: Callable
    name: str = "layer"

    def __repr__(self) -> str:
        return self.name

    def summary(self, input_shape, dtype=jnp.float32) -> str:
        """A table of this model's layers, output shapes and parameter counts: see :func:`summary`."""
        return summary(self, input_shape, dtype)


_SERIAL_LAYERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # serial's apply -> its layers


def _no_params(key, input_shape, dtype=jnp.float32):
    return {}


def _same_shape(input_shape):
    return tuple(input_shape)


def flatten() -> Layer:
    """Flatten each example to a vector, (batch, ...) -> (batch, prod(...)); no params (book ch. 5: Flatten)."""

    def apply(params, x, *, key=None, train=False, grad="manual"):
        return flatten_op(x, grad=grad)

    def output_shape(input_shape):
        n = 1
        for d in input_shape:
            n *= d
        return (n,)

    return Layer(_no_params, apply, output_shape, "flatten()")


def reshape(shape: tuple) -> Layer:
    """Reshape each example to ``shape``, e.g. ``(7, 28, 28)`` after ch. 7's decoder's dense layer; no params.

    ``apply`` raises ValueError for examples that do not hold ``prod(shape)`` values.
    """
    shape = tuple(int(d) for d in shape)

    def apply(params, x, *, key=None, train=False, grad="manual"):
        n = 1
        for d in shape:
            n *= d
        if x.ndim < 1 or (x.size // max(x.shape[0], 1)) != n:
            raise ValueError(
                f"reshape{shape}: each example has {x.shape[1:]} = {x.size // max(x.shape[0], 1)} "
                f"values, cannot become {shape} = {n}"
            )
        return unflatten_op(flatten_op(x, grad=grad), grad=grad, shape=shape)

    def output_shape(input_shape):
        return shape

    return Layer(_no_params, apply, output_shape, f"reshape{shape}")


def apply_dropout(x, keep_prob, *, key, train, grad, mode="book"):
    """``x`` times :func:`fdl.ops.dropout_mask` drawn in x's dtype (book ch. 4); ``x`` itself when ``keep_prob == 1``.

    Shared by the layers with a ``keep_prob``; raises :func:`~fdl.ops.dropout_mask`'s errors.
    """
    if keep_prob == 1.0:
        return x
    return dropout_op(x, dropout_mask(key, x.shape, keep_prob, mode=mode, train=train, dtype=x.dtype), grad=grad)


def dropout(keep_prob: float, *, mode: str = "book") -> Layer:
    """A stand-alone dropout layer keeping each unit with probability ``keep_prob`` (book ch. 4: Dropout).

    No params; ``mode`` is ``"book"`` (scale by ``keep_prob`` at inference) or ``"inverted"``.

    Raises:
      ValueError: ``keep_prob`` outside (0, 1] or an unknown ``mode``.
    """
    expect_probability(keep_prob, "dropout keep_prob")
    check_mode(mode)

    def apply(params, x, *, key=None, train=False, grad="manual"):
        return apply_dropout(x, keep_prob, key=key, train=train, grad=grad, mode=mode)

    return Layer(_no_params, apply, _same_shape, f"dropout({keep_prob})")


def check_layers(layers, kind: type, what: str, expected: str) -> None:
    """Raise ValueError for no layers, TypeError for an argument that is not a ``kind`` (shared by
    :func:`serial` and :func:`fdl.recurrent.stack`)."""
    if not layers:
        raise ValueError(f"{what} needs at least one layer")
    for i, layer in enumerate(layers):
        if not isinstance(layer, kind):
            raise TypeError(f"{what}: argument {i} is {layer!r}, not {expected}")


def init_in_order(layers) -> Callable:
    """``init(key, input_shape, dtype=float32) -> [params per layer]``: each layer initialised with its own key
    (``jax.random.split`` once per layer) on the shape the previous layer outputs.

    Run eagerly (each draw's program is shared across models); the same bits under ``jax.jit`` and ``jax.vmap``.
    """

    def init(key, input_shape, dtype=jnp.float32):
        params, shape = [], tuple(input_shape)
        for layer, k in zip(layers, jax.random.split(key, len(layers)), strict=True):
            params.append(layer.init(k, shape, dtype))
            shape = layer.output_shape(shape)
        return params

    return init


def serial(*layers: Layer) -> Layer:
    """Compose layers in order (book: NeuralNetwork); params are a list, one entry per layer.

    The key given to ``init`` or ``apply`` is split once per layer. ``apply`` re-raises a layer's ValueError
    or TypeError with ``layer i (name):`` before its message.

    Raises:
      ValueError: no layers.
      TypeError: an argument that is not a :class:`Layer` (e.g. ``fdl.flatten`` uncalled).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from fdl import dense
        >>> model = serial(dense(4, "tanh"), dense(1))
        >>> params = model.init(jax.random.key(0), (3,))
        >>> [p["W"].shape for p in params]
        [(3, 4), (4, 1)]
        >>> model.apply(params, jnp.ones((5, 3))).shape
        (5, 1)
    """
    check_layers(layers, Layer, "serial", "a Layer (did you forget to call it?)")
    init = init_in_order(layers)

    def apply(params, x, *, key=None, train=False, grad="manual"):
        check_grad_mode(grad)
        if len(params) != len(layers):
            raise ValueError(f"serial: got params for {len(params)} layers, the model has {len(layers)}")
        keys = jax.random.split(key, len(layers)) if key is not None else [None] * len(layers)
        for i, (layer, p, k) in enumerate(zip(layers, params, keys, strict=True)):
            try:
                x = layer.apply(p, x, key=k, train=train, grad=grad)
            except (ValueError, TypeError) as e:
                if str(e).startswith("layer "):
                    raise
                raise type(e)(f"layer {i} ({layer.name}): {e}") from None
        return x

    def output_shape(input_shape):
        shape = tuple(input_shape)
        for layer in layers:
            shape = layer.output_shape(shape)
        return shape

    _SERIAL_LAYERS[apply] = layers
    return Layer(init, apply, output_shape, "serial(" + ", ".join(layer.name for layer in layers) + ")")


def summary(model: Layer, input_shape, dtype=jnp.float32) -> str:
    """A table of ``model``'s layers: name, output shape, number of parameters; then the total.

    Args:
        model: a :class:`Layer`, usually built by :func:`serial`; the layers of a serial model nested in it
            are listed under it, indented.
        input_shape: the shape of one example, without the batch axis (as for ``model.init``), e.g. ``(13,)``.
        dtype: the parameter dtype used to trace ``init`` (counts do not depend on it).

    Returns:
        A Markdown table string, output shapes written ``(batch, ...)``; ``init`` is only traced
            (``jax.eval_shape``).

    Raises:
        TypeError: ``model`` is not a Layer.
    """
    if not isinstance(model, Layer):
        raise TypeError(f"summary: expected a Layer (e.g. fdl.serial(...)), got {type(model).__name__}")
    rows: list[tuple[str, str, int]] = []
    total = _summary_rows(model, tuple(input_shape), dtype, "", rows, top=True)
    header = ("layer", "output shape", "params")
    cells = [header] + [(name, shape, f"{n:,}") for name, shape, n in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(3)]
    line = lambda r: (
        "| "
        + " | ".join(c.rjust(w) if i == 2 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        + " |"
    )
    return "\n".join(
        [
            f"input shape: (batch, {', '.join(map(str, input_shape))})" if input_shape else "",
            line(cells[0]),
            "|" + "|".join("-" * (w + 2) for w in widths) + "|",
        ]
        + [line(r) for r in cells[1:]]
        + [f"total: {total:,} parameters"]
    ).lstrip("\n")


def _count(layer: Layer, shape: tuple, dtype) -> int:
    params = jax.eval_shape(lambda k: layer.init(k, shape, dtype), jax.random.key(0))
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(params))


def _summary_rows(layer: Layer, shape: tuple, dtype, indent: str, rows: list, top: bool = False) -> int:
    """Append the rows of ``layer`` (and of its sublayers when it is a serial model); return its parameter count."""
    children = _SERIAL_LAYERS.get(layer.apply)
    if children is None:
        n = _count(layer, shape, dtype)
        rows.append((indent + layer.name, _batch_shape(layer.output_shape(shape)), n))
        return n
    if top:
        return sum(_summary_rows(c, s, dtype, indent, rows) for c, s in _child_shapes(children, shape))
    at = len(rows)
    rows.append(None)
    n = sum(_summary_rows(c, s, dtype, indent + "  ", rows) for c, s in _child_shapes(children, shape))
    rows[at] = (indent + f"serial ({len(children)} layers)", _batch_shape(layer.output_shape(shape)), n)
    return n


def _child_shapes(children, shape):
    for child in children:
        yield child, shape
        shape = tuple(child.output_shape(shape))


def _batch_shape(shape) -> str:
    return "(" + ", ".join(["batch", *map(str, shape)]) + ")"
