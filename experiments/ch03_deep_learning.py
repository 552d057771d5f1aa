"""Chapter 3, Deep learning from scratch: three Boston models trained with fdl.fit, over 5 seeds.

    python experiments/ch03_deep_learning.py [--quick] [--seed N] [--seeds 5] [--out DIR]

The book's settings: Dense(1); Dense(13, sigmoid) -> Dense(1); Dense(13, sigmoid) -> Dense(13, sigmoid) ->
Dense(1); weights N(0, 1); mean squared error; SGD lr 0.01; 50 epochs, evaluating every 10, batch 32,
early stopping. The book trains once (seed 20190501, NumPy's generator); fdl draws with JAX keys, so its
runs cannot be the book's, and it reports the mean and sample standard deviation of the test MAE and RMSE
over seeds N, N + 1, ..., N + 4 (N = 20190501 by default; ``--seeds`` sets how many). Each model's seeds are
trained together, as one compiled program (``fdl.fit(..., seed=[...])``: each run draws what it would alone
and stops early on its own). ``--quick``: one seed unless ``--seeds`` is given, 10 epochs.
"""

from __future__ import annotations

import time

import numpy as np

import fdl
from fdl.data import boston_split
from fdl.harness import book
from fdl.harness.experiment import Results, format_table, mean_sd, parse_args, positive_int

BOOK_SEED = 20190501


def models() -> dict:
    """The book's three models, by their names in ``fdl.harness.book.CH03``."""
    return {
        "linear": fdl.serial(fdl.dense(1)),
        "one hidden layer": fdl.serial(fdl.dense(13, "sigmoid"), fdl.dense(1)),
        "two hidden layers": fdl.serial(fdl.dense(13, "sigmoid"), fdl.dense(13, "sigmoid"), fdl.dense(1)),
    }


def run(model, data, *, seed: int | list[int], epochs: int, eval_every: int, grad: str = "manual", log=print):
    """Train one model as the book does; returns ``(params, history, test MAE, test RMSE)``.

    ``seed``: an int for one run; a list of seeds trains one run per seed, together, and returns the stacked
    params (a leading run axis), a list of histories and lists of MAE and RMSE, one per seed."""
    X_train, X_test, y_train, y_test = data
    params, history = fdl.fit(model, fdl.mean_squared_error, fdl.optim.sgd(0.01), X_train, y_train, X_test,
                              y_test, epochs=epochs, eval_every=eval_every, batch_size=32, seed=seed,
                              early_stopping=True, grad=grad, log=log)
    preds = np.asarray(fdl.predict(model, params, X_test))  # (n, 1), or (runs, n, 1)
    maes = [float(np.mean(np.abs(p - y_test))) for p in preds.reshape(-1, *y_test.shape)]
    rmses = [float(np.sqrt(np.mean((p - y_test) ** 2))) for p in preds.reshape(-1, *y_test.shape)]
    if isinstance(history, list | tuple):  # several seeds: one history each
        return params, history, maes, rmses
    return params, history, maes[0], rmses[0]


def extra_args(parser):
    parser.add_argument("--seeds", type=positive_int, default=None,
                        help="seeds per model, trained together (default 5; 1 with --quick)")


def main(argv=None) -> Results:
    args = parse_args(__doc__.splitlines()[0], argv, default_seed=BOOK_SEED, extra=extra_args)
    n_seeds, epochs, eval_every = (1, 10, 5) if args.quick else (5, 50, 10)
    seeds = [args.seed + i for i in range(args.seeds or n_seeds)]
    data = boston_split()
    results = Results("ch03")
    rows = []
    for name, model in models().items():
        want = book.CH03[name]
        print(f"\n{name}: {model!r}")
        print("book: validation MSE " + " / ".join(f"{v:.2f}" for v in want["val_mse"]) +
              f"; MAE {want['mae']}, RMSE {want['rmse']}")
        start = time.perf_counter()
        _, histories, maes, rmses = run(model, data, seed=seeds, epochs=epochs, eval_every=eval_every)
        seconds = time.perf_counter() - start  # all the seeds' runs, trained together
        for seed, mae, rmse in zip(seeds, maes, rmses, strict=True):
            print(f"seed {seed}: test MAE {mae:.2f}, RMSE {rmse:.2f}")
        val = [[e["loss"] for e in h.evals] for h in histories]
        (mae_m, mae_sd), (rmse_m, rmse_sd) = mean_sd(maes), mean_sd(rmses)
        results.add(name, "mae", mae_m, want["mae"])
        results.add(name, "rmse", rmse_m, want["rmse"])
        results.add(name, "seconds", seconds)
        curve = " / ".join(f"{np.mean([v[i] for v in val if len(v) > i]):.2f}" for i in range(max(map(len, val))))
        rows.append([name, f"{mae_m:.2f} ± {mae_sd:.2f}", f"{want['mae']:.2f}", f"{rmse_m:.2f} ± {rmse_sd:.2f}",
                     f"{want['rmse']:.2f}", curve, f"{seconds:.1f}"])

    print(f"\nmean ± sd over seeds {seeds[0]}..{seeds[-1]}; validation MSE: mean over the seeds still training at "
          f"each evaluation (every {eval_every} epochs, early stopping)")
    print(format_table(["model", "MAE", "book", "RMSE", "book", "validation MSE", "seconds"], rows))
    print()
    print(results.table())
    results.meta["seeds"] = seeds
    results.write(args.out)
    return results


if __name__ == "__main__":
    main()
