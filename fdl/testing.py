"""The gradient-comparison harness: hand-written backward passes judged against ``jax.grad``.

One function, :func:`check_vjp`, does the three checks for anything differentiable (an op, a loss, a
layer, a whole model):

(a) the forward values of the manual and the autodiff versions are equal;
(b) their VJPs for one random cotangent are equal (tight: a wrong sign, a missing transpose or a dropped
    term fails by many orders of magnitude);
(c) ``jax.test_util.check_grads(..., modes=["rev"])`` accepts the manual VJP against finite differences.

Run it in float64 (``jax.config.update("jax_enable_x64", True)``); float32 cannot tell a subtle error
from rounding. :func:`check_op` and :func:`check_model` are thin conveniences over it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.test_util import check_grads

RTOL = 1e-9
ATOL = 1e-12


def _assert_close(got, want, what: str, rtol: float, atol: float) -> None:
    got_leaves = jax.tree_util.tree_leaves_with_path(got)
    want_leaves = jax.tree_util.tree_leaves(want)
    if jax.tree_util.tree_structure(got) != jax.tree_util.tree_structure(want):
        raise AssertionError(f"{what}: structures differ: {jax.tree_util.tree_structure(got)} "
                             f"vs {jax.tree_util.tree_structure(want)}")
    for (path, g), w in zip(got_leaves, want_leaves, strict=True):
        g, w = np.asarray(g), np.asarray(w)
        if g.shape != w.shape:
            raise AssertionError(f"{what}{jax.tree_util.keystr(path)}: shape {g.shape} != {w.shape}")
        scale = max(1.0, float(np.max(np.abs(w)))) if w.size else 1.0
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol * scale,
                                   err_msg=f"{what}{jax.tree_util.keystr(path)}: manual vs autodiff")


def _require_float64(tree, what: str) -> None:
    for leaf in jax.tree_util.tree_leaves(tree):
        if jnp.asarray(leaf).dtype != jnp.float64:
            raise ValueError(f"{what}: the gradient checks need float64 inputs, got {jnp.asarray(leaf).dtype}; "
                             "call jax.config.update('jax_enable_x64', True) and pass float64 arrays")


def random_like(key, tree):
    """A standard-normal pytree with the shapes and dtypes of ``tree``."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    keys = jax.random.split(key, max(len(leaves), 1))
    return treedef.unflatten([jax.random.normal(k, jnp.shape(x), jnp.result_type(x))
                              for k, x in zip(keys, leaves, strict=False)])


def check_vjp(manual: Callable, autodiff: Callable, args: Sequence, *, seed: int = 0,
              rtol: float = RTOL, atol: float = ATOL, numerical: bool = True,
              numerical_tol: float | None = None, eps: float | None = None) -> None:
    """Check that ``manual`` (hand-written VJPs) and ``autodiff`` (jax.grad) agree on ``args``.

    Args:
      manual, autodiff: functions of ``*args`` (pytrees of float64 arrays), differentiated in every
        argument; close over anything that takes no gradient (keys, masks, labels).
      args: the arguments.
      seed: seeds the random cotangent.
      rtol, atol: tolerances of checks (a) and (b); ``atol`` is scaled by the largest reference value.
      numerical: run check (c), finite differences, on ``manual``.
      numerical_tol: atol and rtol of check (c) (jax's float64 default when None).
      eps: the finite-difference step of check (c).

    Raises:
      AssertionError naming the argument and leaf that disagree.
    """
    args = tuple(args)
    _require_float64(args, "check_vjp")
    out_m, vjp_m = jax.vjp(manual, *args)
    out_a, vjp_a = jax.vjp(autodiff, *args)
    _assert_close(out_m, out_a, "forward", rtol, atol)
    cotangent = random_like(jax.random.key(seed), out_a)
    for i, (gm, ga) in enumerate(zip(vjp_m(cotangent), vjp_a(cotangent), strict=True)):
        _assert_close(gm, ga, f"gradient of argument {i}", rtol, atol)
    if numerical:
        check_grads(manual, args, order=1, modes=["rev"], atol=numerical_tol, rtol=numerical_tol, eps=eps)


def check_op(op, *arrays, wrt: Sequence[int] | None = None, **kwargs) -> None:
    """:func:`check_vjp` for an :class:`~fdl.ops.Op` (or any callable taking ``grad=``).

    ``wrt`` picks the positional arguments to differentiate (default: all); the others are held fixed.
    Keyword arguments other than check_vjp's are passed to the op (static configuration).
    """
    harness = {k: kwargs.pop(k) for k in ("seed", "rtol", "atol", "numerical", "numerical_tol", "eps")
               if k in kwargs}
    wrt = tuple(range(len(arrays))) if wrt is None else tuple(wrt)

    def bind(grad):
        def f(*diff):
            full = list(arrays)
            for i, a in zip(wrt, diff, strict=True):
                full[i] = a
            return op(*full, grad=grad, **kwargs)
        return f

    check_vjp(bind("manual"), bind("autodiff"), [arrays[i] for i in wrt], **harness)


def check_model(model, params, x, y, loss, *, key=None, train=False, wrt_input=True, **harness) -> None:
    """:func:`check_vjp` for ``loss(model.apply(params, x), y)`` with respect to the params (and ``x``).

    The same model definition is run twice, once with ``grad="manual"`` and once with
    ``grad="autodiff"``; with ``train=True`` and a ``key`` the same dropout masks are drawn in both.
    """
    def bind(grad):
        def f(p, inputs):
            return loss(model.apply(p, inputs, key=key, train=train, grad=grad), y, grad=grad)
        return f if wrt_input else (lambda p: f(p, x))

    args = (params, x) if wrt_input else (params,)
    check_vjp(bind("manual"), bind("autodiff"), args, **harness)
