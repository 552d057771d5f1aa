"""A recurrent layer's params, drawn from its cell's declaration (book ch. 6: RNNLayer._init_params).

A cell declares each parameter with its shape and fans (:class:`~fdl.recurrent.cell.ParamSpec`);
:func:`init_params` draws them with :mod:`fdl.init`'s initialisers, weights with one rule and biases with
another. :func:`initialisers` turns :func:`~fdl.recurrent.rnn_layer`'s arguments into those two rules, the
book's own included: every parameter from ``N(0, weight_scale^2)`` with ``weight_scale = 2 / (n_in + n_out)``
by default, fdl.init's ``"book_glorot"`` scale of the layer's fans (erratum 5).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from ..init import INITIALISERS, bias_initialiser, check_initialiser, init_scale, initialise, normal
from .cell import ParamSpec, shapes

BOOK_INIT = "book"  # an alias of weight_init=None, the book's RNNLayer rule


def init_params(
    specs: tuple[ParamSpec, ...],
    key,
    weight_init: str | Callable,
    bias_init: str | Callable,
    dtype=jnp.float32,
    what: str = "rnn_layer",
) -> dict:
    """``{name: array}`` of the declared params: ``key`` split once per spec, in declared order.

    A ``"weight"`` spec is drawn with ``weight_init``, a ``"bias"`` spec with ``bias_init`` (names of
    :mod:`fdl.init` or functions ``init(key, shape, dtype)``), each with the spec's shape and fans, in ``dtype``.

    Raises:
      ValueError: from :func:`fdl.init.initialise`, an unknown name or an initialiser function that returns
        another shape (``what`` and the param's name begin the message).
    """
    rules = {"weight": weight_init, "bias": bias_init}
    keys = jax.random.split(key, len(specs))
    return {
        p.name: initialise(rules[p.kind], k, p.shape, p.fan_in, p.fan_out, dtype, f"{what} {p.name}")
        for k, p in zip(keys, specs, strict=True)
    }


def book_normal(scale: float) -> Callable:
    """``init(key, shape, dtype)`` drawing ``N(0, scale^2)``: the book's RNNLayer draw (``np.random.normal``)."""
    return lambda key, shape, dtype: normal(key, shape, scale, dtype)


def initialisers(
    weight_init: str | Callable | None, bias_init: str | Callable | None, weight_scale: float | None, n_out: int
) -> Callable:
    """``rules(n_in) -> (weight rule, bias rule)`` for :func:`init_params`, checked now.

    ``weight_init=None`` (or its alias ``"book"``): the book's ``N(0, weight_scale^2)`` for every parameter,
    ``weight_scale`` defaulting to ``2 / (n_in + n_out)``; biases so too unless ``bias_init`` is given. A name
    of :mod:`fdl.init` or a function: weights so, biases with ``bias_init`` as :func:`fdl.dense` does (None:
    the same name, or zeros after a function).

    Raises:
      ValueError: an unknown name (the message lists the names), or ``weight_scale`` with a ``weight_init``.
      TypeError: an initialiser that is neither a name nor a function.
    """
    if weight_init == BOOK_INIT:
        weight_init = None
    if weight_init is not None and weight_scale is not None:
        raise ValueError(
            f"rnn_layer: weight_scale={weight_scale!r} is the book's rule (weight_init=None); "
            f"it cannot be combined with weight_init={weight_init!r}"
        )
    if isinstance(weight_init, str) and weight_init not in INITIALISERS:
        raise ValueError(
            f"rnn_layer: unknown weight_init {weight_init!r}; choose one of {INITIALISERS}, None (the "
            "book's RNNLayer scale, also called 'book'), or pass a function init(key, shape, dtype)"
        )
    if weight_init is not None:
        check_initialiser(weight_init, "rnn_layer")
        bias_init = bias_initialiser(weight_init, bias_init)
    if bias_init is not None:
        check_initialiser(bias_init, "rnn_layer", "bias_init")

    def rules(n_in: int):
        if weight_init is not None:
            return weight_init, bias_init
        book = book_normal(init_scale("book_glorot", n_in, n_out) if weight_scale is None else weight_scale)
        return book, book if bias_init is None else bias_init

    return rules


def input_features(specs: Callable, params, what: str) -> int:
    """``n_in`` of ``params``, read off the first declared param (its rows grow with the input features).

    ``specs(n_in) -> tuple of ParamSpec``. Every param's name and shape is checked against ``specs(n_in)``.

    Raises:
      ValueError: ``params`` not a dict with the declared names and shapes (``what`` begins the message).
    """
    first = specs(0)[0]
    got = {k: tuple(jnp.shape(v)) for k, v in params.items()} if isinstance(params, dict) else {}
    if len(got.get(first.name, ())) != 2:
        raise ValueError(
            f"{what}: params must be a dict of the arrays {sorted(shapes(specs(0)))}, got "
            + (f"keys {sorted(got)}" if isinstance(params, dict) else type(params).__name__)
        )
    n_in = got[first.name][0] - first.shape[0]
    want = shapes(specs(n_in))
    if got != want:
        raise ValueError(f"{what}: params of shapes {got} do not match the cell's declaration {want}")
    return n_in
