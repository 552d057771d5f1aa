"""The property tests' shared machinery: hypothesis settings and strategies, and the bundled comparison.

Each property test (one per op, loss, layer, recurrent layer or chapter; in the test file of that module) lets
hypothesis draw a shape (from a small set) and float64 values; the forward values and the VJPs for one random
cotangent of ``grad="manual"`` (the hand-written backward) and ``grad="autodiff"`` (jax.grad of the plain
forward) must agree to rtol 1e-9 (:func:`assert_vjps_agree`), and nothing may be NaN. Finite differences are
left to the unit tests (fdl.testing.check_vjp).

Speed: compiling dominates, so each test checks a *bundle* of related ops in one jitted function, and shapes
come from 2-4 fixed configurations per test. Every op in a bundle sees every example. Examples per test:
``FDL_HYPOTHESIS_EXAMPLES`` (default 200); runs are derandomized.

Why not :func:`fdl.testing.check_vjp`: it compares one function at a time without jit (hundreds of examples
per test would each dispatch op by op), and its comparison lets NaN equal NaN, where this one fails on any NaN.
"""

from __future__ import annotations

import functools
import os

import jax
import numpy as np
from hypothesis import HealthCheck, assume, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fdl.testing import random_like

EXAMPLES = int(os.environ.get("FDL_HYPOTHESIS_EXAMPLES", 200))
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
RTOL, ATOL = 1e-9, 1e-12


def floats(bound: float = 5.0):
    return st.floats(-bound, bound, allow_nan=False, allow_infinity=False, allow_subnormal=False, width=64)


def draw(data, shape, bound: float = 5.0, elements=None):
    return data.draw(hnp.arrays(np.float64, shape, elements=elements if elements is not None else floats(bound)))


def random_params(data, tree):
    """Parameters shaped like ``tree``: normal values at a drawn scale, from a drawn seed.

    Layers have many parameter arrays; drawing each element through hypothesis would dominate the run time,
    so hypothesis explores the inputs element by element and the parameters by seed and scale.
    """
    rng = np.random.default_rng(seed(data))
    scale = data.draw(st.sampled_from((0.3, 1.0, 2.5)))
    return jax.tree.map(lambda a: scale * rng.standard_normal(np.shape(a)), tree)


def seed(data):
    return data.draw(st.integers(0, 2**16))


def targets(data, shape, kind):
    """One-hot rows, probability rows, or arbitrary non-negative weights (the backward handles sum(y) != 1)."""
    if kind == "one_hot":
        labels = data.draw(hnp.arrays(np.int64, shape[:-1], elements=st.integers(0, shape[-1] - 1)))
        return np.eye(shape[-1])[labels]
    w = draw(data, shape, elements=st.floats(0.0, 3.0, allow_subnormal=False))
    if kind == "probabilities":
        assume(np.all(w.sum(-1) > 1e-3))
        return w / w.sum(-1, keepdims=True)
    return w


# ---------------------------------------------------------------- the comparison: one jit per bundle and shape


@functools.cache
def _comparison(bundle: tuple):
    """Jitted ``(args by name, key) -> {name: (out_manual, out_autodiff, vjp_manual, vjp_autodiff)}``.

    ``bundle`` is ``((name, f, n_diff), ...)`` with ``f(grad, *args)``; the first ``n_diff`` args are
    differentiated, the rest (masks, keys, targets) are held fixed.
    """

    def run(args, key):
        results = {}
        for i, (name, f, n_diff) in enumerate(bundle):
            diff, fixed = args[name][:n_diff], args[name][n_diff:]
            out_m, vjp_m = jax.vjp(lambda *d, f=f, fixed=fixed: f("manual", *d, *fixed), *diff)
            out_a, vjp_a = jax.vjp(lambda *d, f=f, fixed=fixed: f("autodiff", *d, *fixed), *diff)
            cotangent = random_like(jax.random.fold_in(key, i), out_a)
            results[name] = (out_m, out_a, vjp_m(cotangent), vjp_a(cotangent))
        return results

    return jax.jit(run)


def assert_close(got, want, what):
    assert jax.tree.structure(got) == jax.tree.structure(want), what
    for (path, g), w in zip(jax.tree_util.tree_leaves_with_path(got), jax.tree.leaves(want), strict=True):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape, f"{what}{jax.tree_util.keystr(path)}: shape {g.shape} != {w.shape}"
        finite = w[np.isfinite(w)]
        scale = max(1.0, float(np.max(np.abs(finite)))) if finite.size else 1.0  # infinities compare exactly
        assert not np.isnan(g).any() and not np.isnan(w).any(), f"{what}{jax.tree_util.keystr(path)}: NaN"
        np.testing.assert_allclose(
            g, w, rtol=RTOL, atol=ATOL * scale, err_msg=f"{what}{jax.tree_util.keystr(path)}: manual vs autodiff"
        )


def assert_vjps_agree(cases: dict, key_seed: int = 0):
    """``cases``: ``{name: (f, args, n_diff)}``. For each, forward values and VJPs of manual and autodiff agree."""
    bundle = tuple((name, f, n_diff) for name, (f, _, n_diff) in cases.items())
    args = {name: tuple(a) for name, (_, a, _) in cases.items()}
    results = _comparison(bundle)(args, jax.random.key(key_seed))
    for name, (out_m, out_a, g_m, g_a) in results.items():
        assert_close(out_m, out_a, f"{name}: forward")
        for i, (gm, ga) in enumerate(zip(g_m, g_a, strict=True)):
            assert_close(gm, ga, f"{name}: gradient of argument {i}")


@functools.cache
def call(op, **static):
    """``f(grad, *arrays) = op(*arrays, grad=grad, **static)``, one function object per (op, static)."""
    return lambda grad, *a: op(*a, grad=grad, **static)


@functools.cache
def model_fn(model):
    return lambda grad, params, x, key: model.apply(params, x, key=key, train=True, grad=grad)
