"""The gradient-comparison harness: hand-written backward passes judged against ``jax.grad``.

:func:`check_vjp` runs four checks on anything differentiable (an op, a loss, a layer, a model), in float64
(``jax_enable_x64``) under matmul precision ``"highest"``; a failure raises an AssertionError naming the
check and the argument leaf:

(a) **forward**: the manual and autodiff forward values are equal (``rtol=1e-9``, ``atol=1e-12`` times the
    largest reference value);
(b) **manual vs autodiff**: their VJPs for one random cotangent are equal (same tolerances);
(c) **finite differences**: ``jax.test_util.check_grads(..., modes=["rev"])`` accepts the manual VJP
    (``1e-5``, steps ``eps=1e-4``);
(d) **cotangent dtypes**: each gradient comes back in its input's dtype, also, with ``mixed_dtypes``, with
    one argument in float32 and the others in float64.

Kinks (check c): a finite difference across a kink (relu at exactly 0) measures half the slope. When (c)
fails, each leaf is checked alone and, if it fails, at up to ``FD_RETRIES`` points nudged off the kinks; it
fails only if it fails at all of them. (a) and (b) always run at the given point (see
:mod:`fdl.ops.activations` for the kink convention). :func:`check_op` and :func:`check_model` are
conveniences over :func:`check_vjp`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.test_util import check_grads

from .precision import matmul_precision

RTOL = 1e-9
ATOL = 1e-12
FD_TOL = 1e-5
FD_RETRIES = 3
FD_NUDGE = 0.1
FD_RETRY_EPS = 1e-6

STAGES = {
    "a": "forward (check a: manual vs autodiff values)",
    "b": "manual vs autodiff (check b: VJPs)",
    "c": "finite differences (check c)",
    "d": "cotangent dtypes (check d)",
}


def leaf_name(arg_name: str, path) -> str:
    """``params[1]['W'] (layer 1, parameter 'W')`` for a params leaf of a serial model, else ``arg_name[path]``.

    ``path``: a jax key path (from ``jax.tree_util.tree_leaves_with_path``).
    """
    name = f"{arg_name}{jax.tree_util.keystr(path)}"
    if arg_name == "params" and path and isinstance(path[0], jax.tree_util.SequenceKey):
        rest = jax.tree_util.keystr(path[1:])
        keys = [getattr(k, "key", getattr(k, "name", getattr(k, "idx", None))) for k in path[1:]]
        param = f", parameter {'/'.join(str(k) for k in keys)!r}" if rest else ""
        name += f" (layer {path[0].idx}{param})"
    return name


def _leaves(args, arg_names):
    """``[(name, leaf)]`` over every leaf of every argument."""
    return [
        (leaf_name(arg_names[i], path), leaf)
        for i, a in enumerate(args)
        for path, leaf in jax.tree_util.tree_leaves_with_path(a)
    ]


def _names(args, arg_names) -> tuple:
    return tuple(arg_names) if arg_names is not None else tuple(f"argument {i}" for i in range(len(args)))


def _assert_close(got, want, what: str, name: str, rtol: float, atol: float) -> None:
    if jax.tree_util.tree_structure(got) != jax.tree_util.tree_structure(want):
        raise AssertionError(
            f"{what} {name}: structures differ: {jax.tree_util.tree_structure(got)} "
            f"vs {jax.tree_util.tree_structure(want)}"
        )
    for (path, g), w in zip(jax.tree_util.tree_leaves_with_path(got), jax.tree_util.tree_leaves(want), strict=True):
        g, w = np.asarray(g), np.asarray(w)
        where = leaf_name(name, path)
        if g.shape != w.shape:
            raise AssertionError(f"{what} {where}: manual shape {g.shape} != autodiff shape {w.shape}")
        scale = max(1.0, float(np.max(np.abs(w[np.isfinite(w)])))) if np.isfinite(w).any() else 1.0
        np.testing.assert_allclose(
            g, w, rtol=rtol, atol=atol * scale, err_msg=f"{what} {where}: manual (actual) vs autodiff (desired)"
        )


def _require_float64(args, arg_names, fix: str) -> None:
    if not jax.config.jax_enable_x64:
        raise ValueError(
            "the gradient checks need float64, and jax_enable_x64 is off (arrays are silently "
            "float32): call jax.config.update('jax_enable_x64', True) at the start of the program"
        )
    for name, leaf in _leaves(args, arg_names):
        dtype = jnp.result_type(leaf)
        if dtype != jnp.float64:
            raise ValueError(f"the gradient checks need float64 inputs, got {dtype} for {name}. {fix}")


FIX_ARRAY = (
    "Convert it with x.astype(jnp.float64). Note: model.init returns float32 params by default, even with "
    "x64 on; pass model.init(key, input_shape, dtype=jnp.float64)."
)
FIX_MODEL = (
    "model.init returns float32 params by default, even with x64 on: build them with "
    "model.init(key, input_shape, dtype=jnp.float64), and pass float64 inputs (x.astype(jnp.float64))."
)


def random_like(key, tree):
    """A standard-normal pytree with the shapes and dtypes of ``tree`` (the harness's random cotangent).

    Each leaf gets its own key split from ``key``; every leaf must be floating point.
    """
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    keys = jax.random.split(key, max(len(leaves), 1))
    return treedef.unflatten(
        [jax.random.normal(k, jnp.shape(x), jnp.result_type(x)) for k, x in zip(keys, leaves, strict=False)]
    )


def check_cotangent_dtypes(
    f: Callable, args: Sequence, *, arg_names: Sequence[str] | None = None, context: str = ""
) -> None:
    """Check (d): every cotangent of ``jax.vjp(f, *args)`` has the dtype of its primal leaf.

    ``args``: pytrees of arrays; the cotangent fed in is ones shaped like ``f``'s output.

    Raises:
      AssertionError: naming the leaf whose gradient dtype differs from its input's.
    """
    args, names = tuple(args), _names(args, arg_names)
    out, vjp = jax.vjp(f, *args)
    grads = vjp(jax.tree_util.tree_map(jnp.ones_like, out))
    for (name, primal), (_, grad) in zip(_leaves(args, names), _leaves(grads, names), strict=True):
        want, got = jnp.result_type(primal), jnp.result_type(grad)
        if got != want:
            raise AssertionError(
                f"{STAGES['d']}: the gradient of {name} is {got} but its input is {want}"
                f"{context}; a backward must return each gradient in its input's dtype "
                "(custom_vjp contract): cast it with .astype(x.dtype)"
            )


def _check_mixed_dtypes(manual: Callable, args: tuple, names: tuple) -> None:
    """Check (d) with argument i in float32 and the others float64, for each argument."""
    for i in range(len(args)):
        mixed = tuple(
            jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), a) if j == i else a
            for j, a in enumerate(args)
        )
        context = f" (with {names[i]} in float32 and the other arguments in float64)"
        try:
            check_cotangent_dtypes(manual, mixed, arg_names=names, context=context)
        except AssertionError:
            raise
        except Exception as e:  # a dtype error inside the backward is this check's failure
            raise AssertionError(f"{STAGES['d']}: the function failed{context}: {type(e).__name__}: {e}") from e


def _check_grads(f, args, tol, eps):
    try:
        check_grads(f, args, order=1, modes=["rev"], atol=tol, rtol=tol, eps=eps)
    except AssertionError as e:
        return e
    return None


def _nudge(args, key):
    """Every float leaf moved by ``FD_NUDGE * (1 + |x|)`` standard-normal noise: off exact zeros (kinks)."""
    noise = random_like(key, args)
    return jax.tree_util.tree_map(lambda a, n: a + FD_NUDGE * (1.0 + jnp.abs(a)) * n, args, noise)


def _finite_differences(manual: Callable, args: tuple, names: tuple, tol, eps, seed: int) -> None:
    """Check (c), localised to one leaf and retried away from kinks when it fails (see the module docstring)."""
    if _check_grads(manual, args, tol, eps) is None:
        return
    flat, treedef = jax.tree_util.tree_flatten(args)
    leaf_names = [name for name, _ in _leaves(args, names)]

    def one_leaf(point, j, step):
        leaves = jax.tree_util.tree_leaves(point)

        def f(v):
            return manual(*treedef.unflatten(leaves[:j] + [v] + leaves[j + 1 :]))

        return _check_grads(f, (leaves[j],), tol, step)

    for j in range(len(flat)):
        error = one_leaf(args, j, eps)
        for attempt in range(FD_RETRIES if error is not None else 0):
            error = one_leaf(_nudge(args, jax.random.key(seed + 1 + attempt)), j, FD_RETRY_EPS)
            if error is None:
                break
        if error is not None:
            raise AssertionError(
                f"{STAGES['c']}: the hand-written gradient of {leaf_names[j]} disagrees with finite differences at "
                f"the given point and at {FD_RETRIES} points nudged away from kinks; check the backward's formula "
                f"for it. check_grads said: {str(error).strip()}"
            ) from None


def check_vjp(
    manual: Callable,
    autodiff: Callable,
    args: Sequence,
    *,
    seed: int = 0,
    rtol: float = RTOL,
    atol: float = ATOL,
    numerical: bool = True,
    numerical_tol: float | None = FD_TOL,
    eps: float | None = None,
    arg_names: Sequence[str] | None = None,
    mixed_dtypes: bool = False,
    fix: str = FIX_ARRAY,
) -> None:
    """Check that ``manual`` (hand-written VJPs) and ``autodiff`` (jax.grad) agree on ``args``.

    Check (c) is the book's ch. 1 perturbation check on every element; (b) compares with autodiff, as ch. 7
    does with PyTorch's.

    Args:
      manual: a function of ``*args`` (pytrees of float64 arrays, any shapes) using the hand-written VJPs,
        differentiated in every argument; close over anything that takes no gradient (keys, masks, labels).
      autodiff: the same function differentiated by ``jax.grad`` (e.g. built with ``grad="autodiff"``).
      args: the arguments.
      seed: seeds the random cotangent and the nudged points of check (c).
      rtol: relative tolerance of checks (a) and (b).
      atol: absolute tolerance of checks (a) and (b), scaled by the largest reference value.
      numerical: run check (c), finite differences, on ``manual``.
      numerical_tol: atol and rtol of check (c) (1e-5, jax's float64 default).
      eps: the finite-difference step of check (c) (jax's 1e-4 when None).
      arg_names: names of the arguments in messages (default ``argument 0``, ...).
      mixed_dtypes: also run check (d) with each argument in float32 and the others in float64.
      fix: the advice given when an argument is not float64.

    Raises:
      ValueError: x64 is off or an argument leaf is not float64 (the message names the leaf and the fix).
      AssertionError: a check failed; the message names the check and the argument leaf.
    """
    args = tuple(args)
    names = _names(args, arg_names)
    _require_float64(args, names, fix)
    with matmul_precision("highest"):
        out_m, vjp_m = jax.vjp(manual, *args)
        out_a, vjp_a = jax.vjp(autodiff, *args)
        _assert_close(out_m, out_a, STAGES["a"] + ":", "output", rtol, atol)
        cotangent = random_like(jax.random.key(seed), out_a)
        for name, gm, ga in zip(names, vjp_m(cotangent), vjp_a(cotangent), strict=True):
            _assert_close(gm, ga, STAGES["b"] + ": gradient of", name, rtol, atol)
        check_cotangent_dtypes(manual, args, arg_names=names)
        if mixed_dtypes:
            _check_mixed_dtypes(manual, args, names)
        if numerical:
            _finite_differences(manual, args, names, numerical_tol, eps, seed)


def check_op(op, *arrays, wrt: Sequence[int] | None = None, **kwargs) -> None:
    """:func:`check_vjp` for an :class:`~fdl.ops.Op` (or any callable taking ``grad=``), mixed dtypes included.

    ``wrt`` picks the positional arguments to differentiate (default: all; they must be float64); the others
    are held fixed. Keyword arguments other than check_vjp's are passed to the op.

    Raises:
      ValueError: x64 is off or a differentiated array is not float64.
      AssertionError: as :func:`check_vjp`.
      IndexError: a ``wrt`` index beyond the arrays given.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from fdl.ops import sigmoid
        >>> with jax.enable_x64(True):  # the checks compare in float64
        ...     check_op(sigmoid, jnp.linspace(-3.0, 3.0, 7, dtype=jnp.float64))  # returns None; raises on a mismatch
    """
    harness = {
        k: kwargs.pop(k)
        for k in ("seed", "rtol", "atol", "numerical", "numerical_tol", "eps", "mixed_dtypes")
        if k in kwargs
    }
    harness.setdefault("mixed_dtypes", True)
    wrt = tuple(range(len(arrays))) if wrt is None else tuple(wrt)
    name = getattr(op, "name", getattr(op, "__name__", "op"))

    def bind(grad):
        def f(*diff):
            full = list(arrays)
            for i, a in zip(wrt, diff, strict=True):
                full[i] = a
            return op(*full, grad=grad, **kwargs)

        return f

    check_vjp(
        bind("manual"),
        bind("autodiff"),
        [arrays[i] for i in wrt],
        arg_names=[f"{name} argument {i}" for i in wrt],
        **harness,
    )


def check_model(model, params, x, y, loss, *, key=None, train=False, wrt_input=True, **harness) -> None:
    """:func:`check_vjp` for ``loss(model.apply(params, x), y)`` with respect to the params (and ``x``).

    The whole network's hand-written backward (book ch. 3-6) against ``jax.grad``. ``params`` and ``x``
    (batch, *input_shape) are float64; ``y`` as the loss takes it. With ``train=True`` and a ``key`` both
    modes draw the same dropout masks. Check (d) also runs with mixed dtypes unless ``mixed_dtypes=False``.

    Raises:
      ValueError: params or x not float64 (``model.init`` returns float32 by default: pass
        ``dtype=jnp.float64``).
      AssertionError: as :func:`check_vjp`.
    """

    def bind(grad):
        def f(p, inputs):
            return loss(model.apply(p, inputs, key=key, train=train, grad=grad), y, grad=grad)

        return f if wrt_input else (lambda p: f(p, x))

    args = (params, x) if wrt_input else (params,)
    harness.setdefault("mixed_dtypes", True)
    check_vjp(bind("manual"), bind("autodiff"), args, arg_names=("params", "x")[: len(args)], fix=FIX_MODEL, **harness)


def gradient_agreement(loss_of: Callable, params, *batch) -> float:
    """How far the hand-written gradient is from ``jax.grad``'s, as one number (for reports, not a check).

    ``max |g_manual - g_autodiff| / max |g_autodiff|`` over the params' gradient, in float64 (x64 switched on
    inside) under matmul precision "highest". ``loss_of(grad)`` returns ``(params, *batch) -> scalar`` for
    ``grad="manual"`` or ``"autodiff"`` (book ch. 7 compares PyTorch's autograd so). To assert agreement, use
    :func:`check_model`.
    """
    cast = lambda a: np.asarray(a, np.float64) if jnp.issubdtype(jnp.result_type(a), jnp.floating) else a
    with jax.enable_x64(True), matmul_precision("highest"):
        params, batch = jax.tree.map(cast, params), jax.tree.map(cast, batch)
        manual, auto = (jax.jit(jax.grad(loss_of(g)))(params, *batch) for g in ("manual", "autodiff"))
        diff, scale = _largest_differences(manual, auto)
        return float(diff) / float(scale)


@jax.jit
def _largest_differences(manual, auto):
    """``(max |manual - auto|, max |auto|)`` over all leaves of two pytrees of the same structure."""
    manual, auto = jax.tree.leaves(manual), jax.tree.leaves(auto)
    diff = jnp.max(jnp.stack([jnp.max(jnp.abs(m - a)) for m, a in zip(manual, auto, strict=True)]))
    return diff, jnp.max(jnp.stack([jnp.max(jnp.abs(a)) for a in auto]))
