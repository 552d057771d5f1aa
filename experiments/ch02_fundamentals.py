"""Chapter 2, Fundamentals: linear regression and a 13-13-1 network on Boston with hand-derived gradients.

    python experiments/ch02_fundamentals.py [--quick] [--seed N] [--out DIR]

The book's settings: SGD, learning rate 0.001, batch 23, 1000 iterations for linear regression and 10000
for the network, on the book's 354/152 split. Each model is trained with the book's gradients (summed over
the batch; erratum 7) and with fdl's (averaged; the same learning rate is then a 23 times smaller step),
and linear regression is compared with the closed-form least-squares fit. The network is also trained with
the exact gradient of the summed squared error, which differs from the book's by a factor 2 and by the
book's single shared hidden-bias gradient.

With ``--out`` and matplotlib installed it also saves ``predicted_vs_actual.png``: the test-set predictions of
least squares and of the two models trained with the book's gradients against the actual prices.

``--seed N`` trains every model from seed N; by default each uses the seed of the book's notebook (180708
for linear regression, 180807 for the network), which reproduces the book's figures to 4 decimals. The whole
run takes a few seconds, so ``--quick`` changes nothing.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from fdl import metrics
from fdl.chapters import fundamentals as F
from fdl.data import boston_split
from fdl.harness import book
from fdl.harness.experiment import Results, format_table, parse_args

SETTINGS = {  # model -> (name in fdl.harness.book.CH02, iterations)
    "linear_regression": ("linear regression", 1000),
    "neural_network": ("two-layer net", 10000),
}
VARIANTS = {  # reduction -> how the rows are labelled
    "book": "book: summed gradients",
    "mean": "fdl: averaged gradients",
    "sum": "exact summed gradients",
}


def gradient_check(model: str, X, y, seed: int) -> float:
    """Largest |hand-derived - jax.grad| over all parameters, on one batch of 23 rows, in float64."""
    init, forward, gradients, _ = F.MODELS[model]
    weights = init(np.random.RandomState(seed), X.shape[1])
    _, info = forward(X[:23], y[:23], weights)
    manual = gradients(info, weights, "mean")
    by_jax = jax.grad(lambda w: forward(jnp.asarray(X[:23]), jnp.asarray(y[:23]), w)[0])(
        {k: jnp.asarray(v) for k, v in weights.items()}
    )
    return max(float(np.max(np.abs(manual[k] - np.asarray(by_jax[k])))) for k in weights)


def main(argv=None) -> Results:
    args = parse_args(__doc__.splitlines()[0], argv, default_seed=None, quick_is_full=True)
    jax.config.update("jax_enable_x64", True)  # the book computes in float64 NumPy; so does the check
    X_train, X_test, y_train, y_test = boston_split()
    results = Results("ch02")
    rows = []
    scatter = {}  # picture title -> (test predictions, actual prices)

    ols = F.least_squares(X_train, y_train)
    preds = F.predict_regression("linear_regression", X_test, ols)
    want = book.CH02["least squares"]
    mae, rmse = float(metrics.mae(preds, y_test)), float(metrics.rmse(preds, y_test))
    print(f"least squares (np.linalg.lstsq): MAE {mae:.4f}, RMSE {rmse:.4f}")
    results.add("least squares", "mae", mae, want["mae"])
    results.add("least squares", "rmse", rmse, want["rmse"])
    rows.append(["least squares", f"{mae:.4f}", want["mae"], f"{rmse:.4f}", want["rmse"], "-"])
    scatter["least squares"] = (preds, y_test)

    for model, (key, n_iter) in SETTINGS.items():
        seed = F.BOOK_SEEDS[model] if args.seed is None else args.seed
        want = book.CH02[key]
        for reduction, label in VARIANTS.items():
            if model == "linear_regression" and reduction == "sum":
                continue  # identical to the book's gradients for linear regression
            name = f"{key} ({label})"
            print(f"\n{name}, seed {seed}, {n_iter} iterations, lr 0.001, batch 23")
            start = time.perf_counter()
            weights, _ = F.train_regression(
                model,
                X_train,
                y_train,
                n_iter=n_iter,
                learning_rate=0.001,
                batch_size=23,
                seed=seed,
                reduction=reduction,
                log_every=n_iter // 5,
            )
            seconds = time.perf_counter() - start
            preds = F.predict_regression(model, X_test, weights)
            mae, rmse = float(metrics.mae(preds, y_test)), float(metrics.rmse(preds, y_test))
            print(f"test MAE {mae:.4f}, RMSE {rmse:.4f} (book {want['mae']}, {want['rmse']}); {seconds:.2f} s")
            results.add(name, "mae", mae, want["mae"])
            results.add(name, "rmse", rmse, want["rmse"])
            results.add(name, "seconds", seconds)
            rows.append([name, f"{mae:.4f}", want["mae"], f"{rmse:.4f}", want["rmse"], f"{seconds:.2f}"])
            if reduction == "book":
                scatter[f"{key} (book's gradients)"] = (preds, y_test)
        err = gradient_check(model, X_train, y_train, seed)
        print(f"{key}: max |hand-derived gradient - jax.grad| on one batch = {err:.1e}")
        results.add(f"{key}: max abs(hand-derived - jax.grad)", "value", err)

    print()
    print(format_table(["model", "MAE", "book", "RMSE", "book", "seconds"], rows))
    print()
    print(results.table())
    results.write(args.out)
    if args.out is not None:
        import plotting  # experiments/plotting.py, a sibling module

        plotting.predicted_vs_actual(args.out, "predicted_vs_actual.png", scatter, unit="price ($1000s)")
    return results


if __name__ == "__main__":
    main()
