"""Chapter 3, Deep learning from scratch: three Boston models over 10 seeds, or the book's own run replayed.

    python experiments/ch03_deep_learning.py [--quick] [--seed N] [--seeds 10] [--replay-book] [--out DIR]

The book's settings: Dense(1); Dense(13, sigmoid) -> Dense(1); Dense(13, sigmoid) -> Dense(13, sigmoid) ->
Dense(1); weights N(0, 1); mean squared error; SGD lr 0.01; 50 epochs, evaluating every 10, batch 32,
early stopping.

By default fdl draws with JAX keys, so its runs are not the book's: it reports the mean and sample standard
deviation of the test MAE and RMSE over seeds N, N + 1, ... (N = 20190501; ``--seeds``, default 10, trained
together as one compiled program) and where the book's figure lies among them (its z-score).

``--replay-book`` feeds fdl's layers, loss and trainer the NumPy draws the book's notebook makes: each layer
calls ``np.random.seed(20190501)`` and draws ``W`` then ``B`` with ``np.random.randn``; the first epoch's
``np.random.permutation`` comes from the seed set by ``Trainer.fit``, the later ones continue the generator
after the last layer's draws; each permutation reorders the already shuffled data. In float64, it prints
the notebook's 21 figures (15 validation losses, 3 MAE, 3 RMSE) beside fdl's, to the notebook's decimals.
``--quick``: one seed unless ``--seeds`` is given, 10 epochs (the replay refuses it, and ``--seed``/``--seeds``).
"""

from __future__ import annotations

import time

import numpy as np

import fdl
from fdl.data import boston_split
from fdl.harness import book
from fdl.harness.experiment import Results, format_table, mean_sd, parse_args, position, positive_int

BOOK_SEED = 20190501


def models() -> dict:
    """The book's three models, by their names in ``fdl.harness.book.CH03``."""
    return {
        "linear": fdl.serial(fdl.dense(1)),
        "one hidden layer": fdl.serial(fdl.dense(13, "sigmoid"), fdl.dense(1)),
        "two hidden layers": fdl.serial(fdl.dense(13, "sigmoid"), fdl.dense(13, "sigmoid"), fdl.dense(1)),
    }


def run(
    model, data, *, seed: int | list[int], epochs: int, eval_every: int, grad: str = "manual", log=print, **fit_options
):
    """Train one model as the book does; returns ``(params, history, test MAE, test RMSE)``.

    ``seed``: an int for one run; a list of seeds trains one run per seed, together, and returns the stacked
    params (a leading run axis), a list of histories and lists of MAE and RMSE, one per seed."""
    X_train, X_test, y_train, y_test = data
    fit_options.setdefault("early_stopping", True)
    params, history = fdl.fit(
        model,
        fdl.mean_squared_error,
        fdl.optim.sgd(0.01),
        X_train,
        y_train,
        X_test,
        y_test,
        epochs=epochs,
        eval_every=eval_every,
        batch_size=32,
        seed=seed,
        grad=grad,
        log=log,
        **fit_options,
    )
    preds = np.asarray(fdl.predict(model, params, X_test))  # (n, 1), or (runs, n, 1)
    maes = [float(np.mean(np.abs(p - y_test))) for p in preds.reshape(-1, *y_test.shape)]
    rmses = [float(np.sqrt(np.mean((p - y_test) ** 2))) for p in preds.reshape(-1, *y_test.shape)]
    if isinstance(history, list | tuple):  # several seeds: one history each
        return params, history, maes, rmses
    return params, history, maes[0], rmses[0]


def book_draws(widths: list[int], n_features: int, n: int, epochs: int, seed: int = BOOK_SEED):
    """The NumPy draws of the book's notebook for a stack of Dense layers of ``widths`` outputs.

    Returns ``(params, permutations)``: float64 ``[{"W": (in, out), "B": (1, out)}, ...]`` and ``(epochs, n)``
    row orders of the original data (the book permutes the permuted data each epoch, so epoch ``e``'s
    order is the composition of the first ``e + 1`` permutations)."""
    params, fan_in = [], n_features
    for width in widths:
        rng = np.random.RandomState(seed)  # Dense._setup_layer: np.random.seed(self.seed), then randn
        params.append({"W": rng.randn(fan_in, width), "B": rng.randn(1, width)})
        fan_in = width
    # Trainer.fit seeds the generator and draws epoch 0's permutation before the layers' first forward pass
    # reseeds it; later epochs continue the generator where the last layer's draws left it
    steps = [np.random.RandomState(seed).permutation(n)] + [rng.permutation(n) for _ in range(epochs - 1)]
    order, orders = np.arange(n), []
    for p in steps:
        order = order[p]
        orders.append(order)
    return params, np.stack(orders)


def replay_book(data, *, log=print) -> tuple[list[list], int]:
    """The notebook's three runs through fdl (float64); returns the table rows and how many of the 21
    figures fdl prints equal."""
    import jax

    if not jax.config.jax_enable_x64:
        raise RuntimeError("replay_book needs float64: call jax.config.update('jax_enable_x64', True) first")
    X_train = data[0]
    rows, equal = [], 0
    for (name, model), widths in zip(models().items(), ([1], [13, 1], [13, 13, 1]), strict=True):
        params, orders = book_draws(widths, X_train.shape[1], len(X_train), 50)
        rule = fdl.train.StopRule("loss", restore_best=False)  # the book's Trainer, as its notebook scores it
        _, history, mae, rmse = run(
            model,
            data,
            seed=0,
            epochs=50,
            eval_every=10,
            log=None,
            state=fdl.train.TrainState(params, None),
            permutations=orders,
            dtype=np.float64,
            early_stopping=rule,
        )
        want = book.CH03_NOTEBOOK[name]
        ours = [f"{e['loss']:.3f}" for e in history.evals] + [f"{mae:.2f}", f"{rmse:.2f}"]
        theirs = [f"{v:.3f}" for v in want["val_mse"]] + [f"{want['mae']:.2f}", f"{want['rmse']:.2f}"]
        labels = [f"validation MSE, epoch {10 * (i + 1)}" for i in range(5)] + ["test MAE", "test RMSE"]
        for label, a, b in zip(labels, theirs, ours, strict=False):
            rows.append([name, label, a, b, "yes" if a == b else "NO"])
            equal += a == b
        if log is not None:
            log(f"{name}: " + ", ".join(ours))
    return rows, equal


def extra_args(parser):
    parser.add_argument(
        "--seeds",
        type=positive_int,
        default=None,
        help="seeds per model, trained together (default 10; 1 with --quick)",
    )
    parser.add_argument(
        "--replay-book",
        action="store_true",
        help="replay the book's own run (its NumPy draws, float64) and print its 21 figures",
    )


def main(argv=None) -> Results:
    args = parse_args(__doc__.splitlines()[0], argv, default_seed=BOOK_SEED, extra=extra_args)
    data = boston_split()
    results = Results("ch03")
    if args.replay_book:
        if args.quick or args.seeds or args.seed != BOOK_SEED:
            raise SystemExit(
                "ch03: --replay-book replays the book's one run (its seed 20190501, all 50 epochs); it "
                "takes no --quick, --seed or --seeds"
            )
        import jax

        jax.config.update("jax_enable_x64", True)
        start = time.perf_counter()
        rows, equal = replay_book(data)
        seconds = time.perf_counter() - start
        print("\nThe book's notebook and fdl fed the same NumPy draws (float64):")
        print(format_table(["model", "figure", "book (notebook)", "fdl", "equal"], rows, quick=False))
        print(f"\n{equal} of {len(rows)} figures equal to the notebook's decimals ({seconds:.1f} s)")
        for name, label, want, got, _ in rows:
            metric = "mae" if "MAE" in label else "rmse" if "RMSE" in label else "mse"
            results.add(f"{name}, {label} (replay)", metric, float(got), float(want))
        results.meta["replay_equal"] = equal
        results.write(args.out)
        return results

    n_seeds, epochs, eval_every = (1, 10, 5) if args.quick else (10, 50, 10)
    seeds = [args.seed + i for i in range(args.seeds or n_seeds)]
    rows = []
    for name, model in models().items():
        want = book.CH03[name]
        print(f"\n{name}: {model!r}")
        print(
            "book: validation MSE "
            + " / ".join(f"{v:.2f}" for v in want["val_mse"])
            + f"; MAE {want['mae']}, RMSE {want['rmse']}"
        )
        start = time.perf_counter()
        _, histories, maes, rmses = run(model, data, seed=seeds, epochs=epochs, eval_every=eval_every)
        seconds = time.perf_counter() - start  # all the seeds' runs, trained together
        for seed, mae, rmse in zip(seeds, maes, rmses, strict=True):
            print(f"seed {seed}: test MAE {mae:.2f}, RMSE {rmse:.2f}")
        val = [[e["loss"] for e in h.evals] for h in histories]
        (mae_m, mae_sd), (rmse_m, rmse_sd) = mean_sd(maes), mean_sd(rmses)
        results.add(name, "mae", mae_m, want["mae"])
        results.add(name, "rmse", rmse_m, want["rmse"])
        results.add(name, "sd", mae_sd)
        results.add(name, "seconds", seconds)
        curve = " / ".join(f"{np.mean([v[i] for v in val if len(v) > i]):.2f}" for i in range(max(map(len, val))))
        rows.append(
            [
                name,
                f"{mae_m:.2f} ± {mae_sd:.2f}",
                f"{want['mae']:.2f}",
                position(maes, want["mae"]),
                f"{rmse_m:.2f} ± {rmse_sd:.2f}",
                f"{want['rmse']:.2f}",
                position(rmses, want["rmse"]),
                curve,
                f"{seconds:.1f}",
            ]
        )

    print(
        f"\nmean ± sd over seeds {seeds[0]}..{seeds[-1]}; the book's figure's place among them; validation MSE: "
        f"mean over the seeds still training at each evaluation (every {eval_every} epochs, early stopping)"
    )
    print(
        format_table(
            ["model", "MAE", "book", "book's place", "RMSE", "book", "book's place", "validation MSE", "seconds"], rows
        )
    )
    print()
    print(results.table())
    results.meta["seeds"] = seeds
    results.write(args.out)
    return results


if __name__ == "__main__":
    main()
