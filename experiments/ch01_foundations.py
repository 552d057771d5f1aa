"""Chapter 1, Foundations: the book's printed derivative checks, and the chain rule against jax.grad.

    python experiments/ch01_foundations.py [--quick] [--seed N] [--out DIR]

Prints the book's checks (seeds 190203 and 190204, NumPy's legacy generator) beside fdl's values, and the
largest difference between fdl's hand-derived derivatives and ``jax.grad`` for the book's chains of length
2 and 3 over x in [-3, 3) and for L = sum(sigmoid(X W)) with X (4, 3), W (3, 2) drawn from ``--seed``.
With ``--out`` and matplotlib installed it also saves ``chains.png`` (each chain and its derivative).
Everything runs in a second; ``--quick`` changes nothing.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from fdl.chapters import foundations as F
from fdl.harness import book
from fdl.harness.experiment import Results, parse_args

CHAINS = {  # the book's chains, the first function applied first
    "square -> sigmoid": ("square", "sigmoid"),
    "sigmoid -> square": ("sigmoid", "square"),
    "leaky_relu -> square -> sigmoid": ("leaky_relu", "square", "sigmoid"),
    "leaky_relu -> sigmoid -> square": ("leaky_relu", "sigmoid", "square"),
}


def _chain_errors(x) -> dict:
    errors = {}
    for label, names in CHAINS.items():
        fns = [F.FUNCTIONS[n] for n in names]
        by_jax = jax.vmap(jax.grad(F.chain(*(fn.f for fn in fns))))(jnp.asarray(x))
        errors[label] = float(np.max(np.abs(F.chain_deriv(fns, x) - np.asarray(by_jax))))
    return errors


def _matmul_error(seed: int) -> float:
    rng = np.random.RandomState(seed)
    X, W = rng.randn(4, 3), rng.randn(3, 2)
    by_jax = jax.grad(F.matmul_forward, argnums=(0, 1))(jnp.asarray(X), jnp.asarray(W))
    return max(float(np.max(np.abs(a - np.asarray(b)))) for a, b in zip(F.matmul_backward(X, W), by_jax, strict=True))


def _plot(x, out) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot")
        return
    fig, axes = plt.subplots(1, len(CHAINS), figsize=(4 * len(CHAINS), 3.5), sharex=True)
    for ax, (label, names) in zip(axes, CHAINS.items(), strict=True):
        fns = [F.FUNCTIONS[n] for n in names]
        ax.plot(x, F.chain(*(fn.f for fn in fns))(x), label="f(x)")
        ax.plot(x, F.chain_deriv(fns, x), label="df/dx")
        ax.set_title(label, fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "chains.png", dpi=100)
    plt.close(fig)
    print(f"saved {out / 'chains.png'}")


def main(argv=None) -> Results:
    args = parse_args(__doc__.splitlines()[0], argv, default_seed=0, quick_is_full=True)
    jax.config.update("jax_enable_x64", True)  # chapter 1 is about float64 numerics, as the book's NumPy
    results = Results("ch01")

    checks = F.published_checks()
    print(
        "seed 190203, X (1, 3), W (3, 1): dS/dX =",
        np.round(checks["dS/dX (seed 190203)"], 4),
        " book:",
        book.CH01["dS/dX (seed 190203)"],
    )
    for i, (got, want) in enumerate(zip(checks["dS/dX (seed 190203)"], book.CH01["dS/dX (seed 190203)"], strict=True)):
        results.add(f"dS/dX[0,{i}] (seed 190203)", "value", got, want)
    for name in ("L (seed 190204)", "dL/dX[0,0] (seed 190204)"):
        print(f"{name}: {checks[name]:.4f}  book: {book.CH01[name]}")
        results.add(name, "value", checks[name], book.CH01[name])

    x = np.arange(-3, 3, 0.01)
    for label, err in _chain_errors(x).items():
        print(f"chain {label}: max |chain rule - jax.grad| over [-3, 3) = {err:.2e}")
        results.add(f"{label}: max abs(chain_deriv - jax.grad)", "value", err)
    err = _matmul_error(args.seed)
    print(f"L = sum(sigmoid(X W)), seed {args.seed}: max |hand-derived - jax.grad| = {err:.2e}")
    results.add("sum(sigmoid(X W)): max abs(backward - jax.grad)", "value", err)

    if args.out is not None:
        _plot(x, args.out)
    print()
    print(results.table())
    results.write(args.out)
    return results


if __name__ == "__main__":
    main()
