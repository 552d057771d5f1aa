"""Chapter 7, automatic differentiation: the book's four PyTorch models trained through jax.grad with optax.

Each model is trained twice from the same seed (same initial weights, batches and dropout masks): through
``jax.grad`` of the plain forward (``grad="autodiff"``, the chapter's path) and through fdl's hand-written
VJPs (``grad="manual"``). Side by side: the final metric of both, the gradient agreement on one batch
(float64, ``max |manual - autodiff| / max |autodiff|`` over all parameters) and the time per train step.
Boston, the ConvNet and the autoencoder also train ``--seeds`` seeds (default 5) on the jax.grad path, as one
program per model, for a second table: their mean ± sd and where the book's figure lies among them.

* Boston: dense(13, tanh, dropout 0.8) -> dense(1); MSE; ``optax.sgd(0.001, momentum=0.9)`` (PyTorch's
  ``optim.SGD(lr, momentum=0.9)``: v = 0.9 v + g, p -= lr v); batch 32; 100 epochs; test MSE on the book's
  152-row split, mean and sd over the seeds (both paths).
* ConvNet: conv 1->14 (5x5, tanh, dropout 0.8) -> conv 14->7 (5x5, tanh, dropout 0.8, flatten) ->
  dense(32, tanh, dropout 0.8) -> dense(10); softmax cross-entropy; SGD 0.01, momentum 0.9; batch 60; one
  epoch of the standardised images; test accuracy every 200 batches.
* Character LSTM: one LSTM layer (hidden = vocabulary size 65, as the book, and hidden 256) with its output
  projection to the vocabulary; ``optax.adam(0.001)``; mean cross-entropy; windows of 25 characters, batch
  32. One epoch is the book's LSTMTrainer pass (its ``generate_batches_next_char``): batch k holds the 32
  windows starting at characters 32k, 32k + 1, ..., 32k + 31 (:func:`fdl.data.text.book_batch`), so every
  position of the training text (the first 90 % of Hamlet) starts one window: 4891 steps. As in the book,
  the layer's start state is carried from batch to batch (the batch mean of the last state). Validation:
  cross-entropy in nats/char over the last 10 % in non-overlapping windows, from the carried state.
* Autoencoder: conv 1->14 -> conv 14->7 (flatten) -> dense(28) = the encoding -> dense(5488) -> reshape
  (7, 28, 28) -> conv 7->14 -> conv 14->1, all tanh, 5x5 kernels; the standardised images min-max scaled to
  [-1, 1] with the training set's min and max (the book's code; the same as x / 127.5 - 1 of the raw
  bytes); per-pixel MSE (PyTorch's ``MSELoss``); SGD 0.01, momentum 0.9; batch 60; one epoch. Pictures:
  test images and their reconstructions, images decoded from random encodings in [-1, 1], and the t-SNE of
  the first 2000 test encodings coloured by digit (scikit-learn, the ``tsne`` extra; ``--tsne-points all``
  embeds all 10 000, for about 4-5 times the CPU time, which separates the close digits (4 and 9; 3, 5 and 8)
  a little better).

The layers are the book's PyTorch ones, built from fdl's layers: every weight and bias starts from PyTorch's
default U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (``weight_init="pytorch_uniform"``), and the convolutions have
PyTorch's per-channel bias (``conv2d(..., use_bias=True)``, the op :func:`fdl.ops.channel_bias_add` with its
hand-written backward; the book's ch. 5 Conv2D has none). Measured after one epoch with fdl's Glorot init
and no conv bias instead: the autoencoder's MSE on the first 1000 test images 0.092 (seed 0; 0.072 with
PyTorch's init alone, 0.069 with init and bias) and the ConvNet's test accuracy 95.9 % and 96.6 % (seeds 0,
1; 97.1 % and 96.6 % with PyTorch's init and bias). Dropout is PyTorch's ``nn.Dropout`` (inverted: scaled by
1 / 0.8 while training).

Every model trains through :func:`fdl.fit` (the character LSTM through
:func:`fdl.recurrent.fit_chars`): compiled ``lax.scan`` chunks with the data on the device, for both
gradient paths; the time per step is the chunks' wall time (no compilation, no evaluation) over the steps.

    python experiments/ch07_autodiff.py [--quick] [--seed N] [--seeds 5] [--models boston convnet ...]
        [--out DIR] [--tsne-points N|all]
"""

from __future__ import annotations

import argparse
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fdl
from fdl import conv2d, dense, serial
from fdl.data import boston_split, load_mnist, load_text, mnist_preprocess, one_hot
from fdl.data.text import Vocabulary, book_batch, split, windows
from fdl.harness.book import CH07
from fdl.harness.experiment import Results, format_table, mean_sd, parse_args, position, positive_int
from fdl.init import uniform_fan_in
from fdl.layers import Layer, reshape
from fdl.losses import mean_squared_error, softmax_cross_entropy
from fdl.metrics import accuracy
from fdl.recurrent import char_loss, fit_chars, rnn_layer, stack
from fdl.testing import gradient_agreement
from fdl.train import model_loss, predict

PATHS = {"autodiff": "jax.grad", "manual": "hand-written VJPs"}
pixel_mse = functools.partial(mean_squared_error, over="elements")
SEQ_LEN = 25
TSNE_POINTS = 2000  # the t-SNE's default: every digit's cluster shows, at about a fifth of all 10 000's CPU time


def linear(neurons: int, activation="linear", *, keep_prob: float = 1.0) -> Layer:
    """The book's ch. 7 DenseLayer (nn.Linear, activation, nn.Dropout): fdl's dense with PyTorch's init and
    PyTorch's (inverted) dropout."""
    return dense(neurons, activation, weight_init="pytorch_uniform", keep_prob=keep_prob, dropout_mode="inverted")


def conv(out_channels: int, activation="tanh", *, keep_prob: float = 1.0, flatten: bool = False, k: int = 5) -> Layer:
    """The book's ch. 7 ConvLayer: nn.Conv2d (k x k, "same" padding, a bias per channel), activation, flatten,
    nn.Dropout: fdl's conv2d with ``use_bias=True`` and PyTorch's init (the book's ch. 5 Conv2D has no bias)."""
    return conv2d(
        out_channels,
        k,
        activation,
        weight_init="pytorch_uniform",
        use_bias=True,
        keep_prob=keep_prob,
        dropout_mode="inverted",
        flatten=flatten,
    )


def boston_model():
    return serial(linear(13, "tanh", keep_prob=0.8), linear(1))


def convnet():
    return serial(
        conv(14, keep_prob=0.8), conv(7, keep_prob=0.8, flatten=True), linear(32, "tanh", keep_prob=0.8), linear(10)
    )


def autoencoder(hidden: int = 28):
    """``(serial(encoder, decoder), encoder, decoder)``: params[0] are the encoder's, params[1] the decoder's."""
    encoder = serial(conv(14), conv(7, flatten=True), linear(hidden, "tanh"))
    decoder = serial(linear(7 * 28 * 28, "tanh"), reshape((7, 28, 28)), conv(14), conv(1))
    return serial(encoder, decoder), encoder, decoder


def pytorch_recurrent(hidden: int):
    """PyTorch's default for nn.LSTM (and nn.RNN, nn.GRU): every weight and bias from U(-1/sqrt(hidden),
    1/sqrt(hidden)), whatever its shape; an initialiser ``init(key, shape, dtype)``."""
    return lambda key, shape, dtype: uniform_fan_in(key, shape, hidden, dtype)


def char_lstm(hidden: int, vocab: int):
    """nn.LSTM(vocab, hidden) and nn.Linear(hidden, vocab) as one fdl LSTM layer; every parameter (the output
    projection's too, whose fan-in is also ``hidden``) drawn from PyTorch's U(-1/sqrt(hidden), 1/sqrt(hidden))."""
    init = pytorch_recurrent(hidden)
    return stack(rnn_layer(hidden, vocab, "lstm", weight_init=init, bias_init=init))


def which(seeds) -> str:
    return f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}..{seeds[-1]}"


def run_boston(args, results, rows, spread, log=print):
    X_train, X_test, y_train, y_test = boston_split()
    model, tx = boston_model(), optax.sgd(0.001, momentum=0.9)
    epochs, seeds = (10 if args.quick else 100), args.seeds
    out = {}
    for grad, label in PATHS.items():
        log(f"\n--- Boston, {label}, {which(seeds)}")
        # every seed's run in one fit call, trained together (fit prefixes each run's lines with "seed N: ")
        params, histories = fdl.fit(
            model,
            mean_squared_error,
            tx,
            X_train,
            y_train,
            X_test,
            y_test,
            epochs=epochs,
            eval_every=max(epochs // 5, 1),
            batch_size=32,
            seed=seeds,
            early_stopping=False,
            grad=grad,
            log=log,
        )
        mses = [float(mean_squared_error(p, jnp.asarray(y_test))) for p in predict(model, params, X_test)]
        out[grad] = mean_sd(mses)
        if grad == "autodiff":
            spread["boston"] = ("mse", CH07["boston"]["mse"], mses)
        log(f"Boston, {label}: test MSE {out[grad][0]:.2f} ± {out[grad][1]:.2f} over {len(seeds)} seed(s)")
        # seconds per run-step: the S runs' shared step time / S (history.seconds is shared by the runs)
        out[grad + " s"] = sum(histories[0].seconds) / max(h.best_step for h in histories) / len(seeds)
    params = model.init(jax.random.key(args.seed), X_train.shape[1:])
    agree = gradient_agreement(supervised(model, mean_squared_error), params, X_train[:32], y_train[:32])
    finish("boston", "mse", CH07["boston"]["mse"], out, agree, results, rows, f" ({len(seeds)} seeds, mean)")


def finish(name, metric, book, out, agree, results, rows, note=""):
    """Results rows and the side-by-side table row of one model; ``out[grad]`` is a value or (mean, sd)."""
    value = lambda g: out[g][0] if isinstance(out[g], tuple) else out[g]
    for grad, label in PATHS.items():
        results.add(f"{name}: {label}{note}", metric, value(grad), book)
        results.add(f"{name}: train step, {label}", "seconds", out[grad + " s"])
    results.add(f"{name}: max relative gradient difference (float64)", "value", agree)
    fmt = lambda v: f"{v:.4f}" if metric == "mse" and v < 1 else f"{v:.2f}"
    shown = lambda g: fmt(value(g)) + (f" ± {out[g][1]:.2f}" if isinstance(out[g], tuple) else "")
    rows.append(
        [
            name,
            metric + (" (%)" if metric == "accuracy" else ""),
            "-" if book is None else book,
            shown("autodiff"),
            shown("manual"),
            f"{agree:.1e}",
            f"{1000 * out['autodiff s']:.1f}",
            f"{1000 * out['manual s']:.1f}",
        ]
    )


def supervised(model, loss):
    """``grad -> (params, x, y) -> training loss`` with fixed dropout masks, for :func:`gradient_agreement`."""
    return lambda g: lambda p, x, y: model_loss(model, loss, grad=g)(p, (x, y), jax.random.key(1))[0]


def train_one_epoch(model, loss, tx, X, Y, X_test, Y_test, *, seeds, grad, batch_size, eval_every, metric, log):
    """One shuffled epoch through :func:`fdl.fit` for each of ``seeds`` (trained together), evaluated on the
    test set every ``eval_every`` batches. Returns ``(params of the first seed, the last value of metric for
    each seed, seconds per run-step)`` (compilation and evaluation untimed)."""
    name, fn = metric
    params, histories = fdl.fit(
        model,
        loss,
        tx,
        X,
        Y,
        X_test,
        Y_test,
        epochs=1,
        eval_every_steps=eval_every,
        batch_size=batch_size,
        seed=list(seeds),
        early_stopping=False,
        grad=grad,
        metrics={name: fn},
        log=None,
    )
    for i, e in enumerate(histories[0].evals):
        log(
            f"Validation {name} after {e['step']} batches is "
            + ", ".join(f"{h.evals[i][name]:.4f}" for h in histories)
            + f" (train loss {', '.join(f'{h.train_loss[i]:.4f}' for h in histories)})"
        )
    seconds = sum(histories[0].seconds) / histories[0].best_step / len(seeds)
    return jax.tree.map(lambda a: a[0], params), [h.evals[-1][name] for h in histories], seconds


def mnist_data(args):
    X_train, y_train, X_test, y_test = load_mnist()
    if args.quick:
        X_train, y_train, X_test, y_test = X_train[:600], y_train[:600], X_test[:500], y_test[:500]
    X_train, X_test = mnist_preprocess(X_train, X_test, flatten=False)
    return X_train, one_hot(y_train, 10), X_test, one_hot(y_test, 10), y_test


def run_convnet(args, data, results, rows, spread, log=print):
    X_train, Y_train, X_test, Y_test, _ = data
    model, tx = convnet(), optax.sgd(0.01, momentum=0.9)

    out = {}
    for grad, label in PATHS.items():
        seeds = args.seeds if grad == "autodiff" else args.seeds[:1]  # the chapter's path: every seed
        log(f"\n--- ConvNet, {label}, {which(seeds)}")
        _, accs, out[grad + " s"] = train_one_epoch(
            model,
            softmax_cross_entropy,
            tx,
            X_train,
            Y_train,
            X_test,
            Y_test,
            seeds=seeds,
            grad=grad,
            batch_size=60,
            eval_every=args.eval_every,
            metric=("accuracy", accuracy),
            log=log,
        )
        out[grad] = 100 * accs[0]
        if grad == "autodiff":
            spread["convnet"] = ("accuracy", CH07["convnet"]["accuracy"], [100 * a for a in accs])
    params = model.init(jax.random.key(args.seed), X_train.shape[1:])
    n = 8 if args.quick else 60
    agree = gradient_agreement(supervised(model, softmax_cross_entropy), params, X_train[:n], Y_train[:n])
    finish("convnet", "accuracy", CH07["convnet"]["accuracy"], out, agree, results, rows, f" (seed {args.seed})")


def run_autoencoder(args, data, results, rows, spread, log=print):
    X_train, _, X_test, _, labels = data
    lo, hi = X_train.min(), X_train.max()
    X_train, X_test = ((X - lo) / (hi - lo) * 2 - 1 for X in (X_train, X_test))
    model, encoder, decoder = autoencoder()
    tx = optax.sgd(0.01, momentum=0.9)

    out, trained = {}, {}
    for grad, label in PATHS.items():
        seeds = args.seeds if grad == "autodiff" else args.seeds[:1]
        log(f"\n--- Autoencoder, {label}, {which(seeds)}")
        trained[grad], mses, out[grad + " s"] = train_one_epoch(
            model,
            pixel_mse,
            tx,
            X_train,
            X_train,
            X_test,
            X_test,
            seeds=seeds,
            grad=grad,
            batch_size=60,
            eval_every=args.eval_every,
            metric=("MSE", pixel_mse),
            log=log,
        )
        out[grad] = mses[0]
        if grad == "autodiff":
            spread["autoencoder"] = ("mse", CH07["autoencoder"]["mse"], mses)
    params = model.init(jax.random.key(args.seed), X_train.shape[1:])
    n = 4 if args.quick else 60
    agree = gradient_agreement(
        lambda g: lambda p, x: pixel_mse(model.apply(p, x, grad=g), x, grad=g), params, X_train[:n]
    )
    finish("autoencoder", "mse", CH07["autoencoder"]["mse"], out, agree, results, rows, f" (seed {args.seed})")
    if args.out is not None:
        autoencoder_pictures(args, trained["autodiff"], encoder, decoder, model, X_test, labels, log)


def autoencoder_pictures(args, params, encoder, decoder, model, X_test, labels, log):
    import plotting

    if plotting.pyplot() is None:
        return
    shown = X_test[:10]
    plotting.image_rows(
        args.out,
        "ae_reconstructions.png",
        {"test image": shown, "reconstructed": np.asarray(predict(model, params, shown))},
    )
    codes = jax.random.uniform(jax.random.key(args.seed), (10, 28), minval=-1.0, maxval=1.0)
    plotting.image_rows(
        args.out, "ae_random_encodings.png", {"decoded from U(-1, 1)": np.asarray(predict(decoder, params[1], codes))}
    )
    try:
        from sklearn.manifold import TSNE
    except ImportError:
        log("scikit-learn is not installed (pip install -e '.[tsne]'): no t-SNE picture")
        return
    n = len(X_test) if args.tsne_points == "all" else min(args.tsne_points, len(X_test))
    codes = np.asarray(predict(encoder, params[0], X_test[:n], batch_size=1000), np.float64)
    tic = time.perf_counter()
    points = TSNE(n_components=2, init="pca", random_state=args.seed, perplexity=min(30.0, (n - 1) / 3)).fit_transform(
        codes
    )
    log(f"t-SNE of {n} test encodings: {time.perf_counter() - tic:.0f} s")
    plotting.embedding(
        args.out, "ae_tsne.png", points, np.asarray(labels[:n]), title=f"t-SNE of {n} test encodings (28-d), by digit"
    )


def run_char_lstm(args, results, rows, log=print):
    text = load_text("hamlet")[:8_000] if args.quick else load_text("hamlet")
    vocab = Vocabulary.from_text(text)
    train_text, valid_text = split(text, 0.1)
    train_ids = vocab.encode(train_text)
    vx, vy = windows(vocab.encode(valid_text), SEQ_LEN, vocab_size=vocab.size)
    tx, batch = optax.adam(0.001), 32
    n = (len(train_ids) - SEQ_LEN - batch - 1) // batch + 1  # one pass of book_batch over the text
    every = 50 if args.quick else 1000
    for hidden in (vocab.size,) if args.quick else (vocab.size, 256):
        model = char_lstm(hidden, vocab.size)
        name = f"char lstm, hidden {hidden}" + (" (= vocabulary)" if hidden == vocab.size else "")
        out = {}
        for grad, label in PATHS.items():
            log(f"\n--- {name}, {label}: {n} steps of {batch} windows")
            _, history = fit_chars(
                model,
                tx,
                train_ids,
                steps=n,
                batch_size=batch,
                sequence_length=SEQ_LEN,
                batches="book",
                valid=(vx, vy),
                eval_every=every,
                seed=args.seed,
                grad=grad,
                log=None,
            )
            for e, train_ce in zip(history.evals, history.train_loss, strict=True):
                log(f"  step {e['step']:4d}: train ce {train_ce:.3f}, validation ce {e['loss']:.3f} nats/char")
            out[grad], out[grad + " s"] = history.evals[-1]["loss"], sum(history.seconds) / history.best_step
        params = model.init(jax.random.key(args.seed), (vocab.size,))
        loss_of = lambda g, m=model: (
            lambda p, x, y: char_loss(m, p, x, y, m.zero_state(jnp.float64), vocab.size, grad=g, dtype=jnp.float64)[0]
        )
        agree = gradient_agreement(loss_of, params, *book_batch(train_ids, 0, batch, SEQ_LEN, vocab_size=vocab.size))
        finish(name, "ce", CH07["char lstm"]["ce"] if hidden == vocab.size else None, out, agree, results, rows)


def tsne_points(value: str):
    """``--tsne-points``: ``"all"`` or an integer of at least 10."""
    if value == "all":
        return value
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 10:
        raise argparse.ArgumentTypeError(f"expected 'all' or a number of test encodings of at least 10, got {value!r}")
    return n


MODELS = ("boston", "convnet", "char lstm", "autoencoder")


def extra_args(parser):
    parser.add_argument(
        "--tsne-points",
        type=tsne_points,
        default=None,
        metavar="N|all",
        help=f"test encodings in the t-SNE picture: the first N, or all (default {TSNE_POINTS}, 200 with --quick)",
    )
    parser.add_argument(
        "--seeds",
        "--boston-seeds",
        dest="n_seeds",
        type=positive_int,
        default=None,
        help="seeds for Boston (both paths), the ConvNet and the autoencoder (jax.grad), each "
        "model's trained together as one program (default 5; 1 with --quick)",
    )
    parser.add_argument(
        "--models",
        nargs="+",
        choices=MODELS,
        default=list(MODELS),
        metavar="MODEL",
        help=f"train only these models (of {', '.join(MODELS)})",
    )


def main(argv=None):
    args = parse_args(__doc__.splitlines()[0], argv, default_seed=0, extra=extra_args)
    args.eval_every = 5 if args.quick else 200
    args.tsne_points = args.tsne_points or (200 if args.quick else TSNE_POINTS)
    args.seeds = [args.seed + i for i in range(args.n_seeds or (1 if args.quick else 5))]
    results, rows, wall, spread = Results("ch07"), [], {}, {}
    runs = {
        "boston": lambda: run_boston(args, results, rows, spread),
        "convnet": lambda: run_convnet(args, data, results, rows, spread),
        "char lstm": lambda: run_char_lstm(args, results, rows),
        "autoencoder": lambda: run_autoencoder(args, data, results, rows, spread),
    }
    data = mnist_data(args) if {"convnet", "autoencoder"} & set(args.models) else None
    for name in MODELS:
        if name in args.models:
            tic = time.perf_counter()
            runs[name]()
            wall[name] = time.perf_counter() - tic
    table = format_table(
        [
            "model",
            "metric",
            "book",
            "jax.grad + optax",
            "hand-written VJPs",
            "grad rel. diff (f64)",
            "ms/step jax.grad",
            "ms/step manual",
        ],
        rows,
    )
    print("\n" + table)
    spread_rows = []
    for name, (metric, book, values) in spread.items():
        m, sd = mean_sd(values)
        fmt = "{:.4f}" if metric == "mse" and m < 1 else "{:.2f}"
        results.add(f"{name}: jax.grad, {len(values)} seeds", metric, m, book)
        results.add(f"{name}: jax.grad, {len(values)} seeds", "sd", sd)
        spread_rows.append(
            [name, metric, fmt.format(book), f"{fmt.format(m)} ± {fmt.format(sd)}", position(values, book)]
        )
    if spread_rows:
        print(f"\njax.grad path over {which(args.seeds)} (mean ± sd), and the book's figure among them:")
        print(format_table(["model", "metric", "book", f"fdl ({len(args.seeds)} seeds)", "book's place"], spread_rows))
    print("wall seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in wall.items()))
    print("\n" + results.table())
    results.meta["seeds"] = {"boston, convnet, autoencoder": args.seeds, "char lstm": [args.seed]}
    if args.out is not None:
        results.write(args.out)
        (args.out / "table.md").write_text(table + "\n")
    return results


if __name__ == "__main__":
    main()
