"""Chapter 4, Extensions: the book's MNIST accuracy ladder, one change at a time.

Each rung adds one of the chapter's ideas to the one before: softmax cross-entropy instead of MSE, momentum,
learning-rate decay, Glorot initialisation, dropout, a deeper network. Settings as the book: batch 60,
50 epochs (100 for the deep networks), evaluation on the test set every 10 epochs with early stopping,
seeds from 20190119. Each rung trains its seeds (``--seeds``, default 10) together, as one compiled program
(``fdl.fit(..., seed=[...])``), and the table reports the mean ± sd of the test accuracy over them and where
each of the book's figures lies among them (its z-score).

Two early-stopping rules, read off the same runs (a run trains the same whether or not it stops, so each
rung is trained once without stopping and :meth:`fdl.train.StopRule.choose` picks each rule's params):
fdl's (stop when the categorical cross-entropy rises, keep the best evaluation's params) and the book's
notebooks' (stop when the book's own loss rises, for softmax cross-entropy its binary-style one,
:func:`fdl.metrics.book_cross_entropy`, and score the network trained through that evaluation).
fdl differs from the book where the book's code is wrong (see the errata in the README): the loss trained
and printed is the categorical cross-entropy, "glorot" is Glorot's scale, and ReLU's gradient is 0 for
negative inputs. The book's "glorot" scale can be run with --book-glorot.

    python experiments/ch04_extensions.py [--quick] [--seeds 10] [--rows 1 2 3] [--out DIR]

``--quick``: 3000 training and 1000 test images, 3 epochs, one seed unless ``--seeds`` is given.

With ``--out`` and matplotlib installed it also saves ``loss_curves.png``: each rung's test loss at every
evaluation and its mean training loss per epoch (first seed; the MSE rungs' loss is on another scale).
"""

from __future__ import annotations

import time

import fdl
from fdl import dense, serial
from fdl.data import load_mnist, mnist_preprocess, one_hot
from fdl.harness.book import CH04
from fdl.harness.experiment import Results, format_table, mean_sd, parse_args, position, positive_int
from fdl.losses import mean_squared_error, softmax_cross_entropy
from fdl.metrics import accuracy, book_cross_entropy
from fdl.optim import momentum, sgd
from fdl.train import StopRule


def rules(loss) -> dict:
    """fdl's early-stopping rule and the book's notebooks' for a rung trained on ``loss``: the book's
    ``Trainer`` watches the network's own loss, which for softmax cross-entropy is its binary-style one."""
    book_watches = "book loss" if loss is softmax_cross_entropy else "loss"
    return {"fdl": StopRule("loss"), "book": StopRule(book_watches, restore_best=False)}


BOOK_SEED = 20190119


def ladder(glorot: str):
    """The rungs: (name, model, loss, optimizer, epochs)."""
    mom = momentum(0.1, 0.9)
    lin = momentum(0.15, 0.9, final_lr=0.05, decay_type="linear")
    exp = momentum(0.2, 0.9, final_lr=0.05, decay_type="exponential")

    def net(hidden="tanh", out="linear", init="standard", drop=1.0):
        return serial(dense(89, hidden, weight_init=init, keep_prob=drop), dense(10, out, weight_init=init))

    def deep(drop):
        return serial(
            dense(178, "tanh", weight_init=glorot, keep_prob=drop),
            dense(46, "tanh", weight_init=glorot, keep_prob=drop),
            dense(10, weight_init=glorot),
        )

    ce, mse = softmax_cross_entropy, mean_squared_error
    return [
        ("tanh + sigmoid, MSE", net(out="sigmoid"), mse, sgd(0.1), 50),
        ("softmax CE", net(), ce, sgd(0.1), 50),
        ("+ momentum", net(), ce, mom, 50),
        ("+ linear decay", net(), ce, lin, 50),
        ("+ exponential decay", net(), ce, exp, 50),
        ("+ glorot, linear decay", net(init=glorot), ce, lin, 50),
        ("+ glorot, exponential decay", net(init=glorot), ce, exp, 50),
        ("+ dropout", net(init=glorot, drop=0.8), ce, exp, 50),
        ("deep, dropout", deep(0.8), ce, exp, 100),
        ("deep, no dropout", deep(1.0), ce, exp, 100),
        ("relu hidden layer", net(hidden="relu", out="sigmoid"), mse, sgd(0.1), 50),
    ]


def extra_args(parser):
    parser.add_argument(
        "--seeds", type=positive_int, default=None, help="seeds per rung, trained together (default 10; 1 with --quick)"
    )
    parser.add_argument("--rows", type=int, nargs="+", help="only these rungs (1-based)")
    parser.add_argument("--book-glorot", action="store_true", help="use the book's glorot scale (erratum 5)")


def main(argv=None):
    args = parse_args(__doc__.splitlines()[0], argv, default_seed=BOOK_SEED, extra=extra_args)
    X_train, y_train, X_test, y_test = load_mnist()
    if args.quick:
        X_train, y_train, X_test, y_test = X_train[:3000], y_train[:3000], X_test[:1000], y_test[:1000]
    X_train, X_test = mnist_preprocess(X_train, X_test)
    Y_train, Y_test = one_hot(y_train, 10), one_hot(y_test, 10)
    rungs = ladder("book_glorot" if args.book_glorot else "glorot")
    if args.rows:
        rungs = [rungs[i - 1] for i in args.rows]
    seeds = [args.seed + i for i in range(args.seeds or (1 if args.quick else 10))]
    which = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}..{seeds[-1]}"

    results, table, stops = Results("ch04"), [], []
    curves = {}  # rung -> the first seed's fit history
    for name, model, loss, optimizer, epochs in rungs:
        print(f"\n--- {name} ({which})")
        start = time.perf_counter()
        params, histories = fdl.fit(
            model,
            loss,
            optimizer,
            X_train,
            Y_train,
            X_test,
            Y_test,
            epochs=3 if args.quick else epochs,
            eval_every=1 if args.quick else 10,
            batch_size=60,
            seed=seeds,
            early_stopping=False,
            metrics={"accuracy": accuracy, "book loss": book_cross_entropy},
        )
        final = [100 * float(accuracy(p, Y_test)) for p in fdl.predict(model, params, X_test)]  # (runs, n, 10)
        seconds = time.perf_counter() - start
        text, notebook = CH04[name]
        row, chosen = [name, "-" if text is None else f"{text:.2f}", f"{notebook:.2f}"], {}
        for rule_name, rule in rules(loss).items():
            accs, epochs_at = [], []
            for h, last in zip(histories, final, strict=True):
                i = rule.choose(h.evals)
                accs.append(last if i is None else 100 * h.evals[i]["accuracy"])
                epochs_at.append(h.evals[-1]["epoch"] if i is None else h.evals[i]["epoch"])
            chosen[rule_name] = accs
            m, sd = mean_sd(accs)
            results.add(f"{name} ({rule_name} rule)", "accuracy", m, text if text is not None else notebook)
            results.add(f"{name} ({rule_name} rule)", "sd", sd)
            row += [f"{m:.2f} ± {sd:.2f}", position(accs, text), position(accs, notebook)]
            stops.append([name, rule_name, " ".join(str(e) for e in epochs_at)])
        for seed, a, b in zip(seeds, chosen["fdl"], chosen["book"], strict=True):
            print(f"seed {seed}: The model validation accuracy is: {a:.2f}% (fdl's rule), {b:.2f}% (the book's)")
        print(f"({len(seeds)} run{'s' * (len(seeds) > 1)} together: {seconds:.1f} s)")
        curves[name] = histories[0]
        results.add(name, "seconds", seconds)
        table.append(row)
    n = f"{len(seeds)} seed{'s' * (len(seeds) > 1)}"
    print(
        "\n"
        + format_table(
            [
                "configuration",
                "book (text)",
                "book (notebook)",
                f"fdl's rule ({n})",
                "book (text): place",
                "book (notebook): place",
                f"the book's rule ({n})",
                "book (text): place",
                "book (notebook): place",
            ],
            table,
        )
    )
    print("\nthe epoch whose params each rule returns, per seed:")
    print(format_table(["configuration", "rule", "epochs"], stops, quick=False))
    results.meta["seeds"] = seeds
    results.write(args.out)
    if args.out is not None:
        plot_curves(curves, args.out)
    return results


def plot_curves(curves: dict, out) -> None:
    import plotting  # experiments/plotting.py, a sibling module

    test = {name: ([e["epoch"] for e in h.evals], [e["loss"] for e in h.evals]) for name, h in curves.items()}
    train = {name: (list(range(1, len(h.train_loss) + 1)), h.train_loss) for name, h in curves.items()}
    plotting.curves(
        out,
        "loss_curves.png",
        [("test loss at each evaluation", "loss", test), ("mean training loss per epoch", "loss", train)],
        xlabel="epoch",
        logy=True,
    )


if __name__ == "__main__":
    main()
