"""Chapter 5, CNNs: the book's one-layer convolutional network on MNIST, one epoch.

conv (5x5, tanh, Glorot, dropout 0.8, flatten) -> dense(10, linear, the book's default N(0, 1) init); softmax
cross-entropy; SGD with momentum 0.9; batch 60; one epoch; the validation accuracy on the 10 000 test images
after every 100 batches, as the book prints it. Two configurations: 32 channels with lr 0.01 (the text) and
16 channels with lr 0.1 (the notebook). Seeds from 20190402, the book's: each configuration trains its seeds
(``--seeds``, default 5) together as one program, and the table gives the mean ± sd of the final accuracy and
where the book's figure lies among them (its z-score). fdl's "glorot" is Glorot's scale with the
convolution's fans (erratum 5; --book-glorot uses the book's 2 / (in + out) channels). --book-conv-grad trains
with the book's convolution weight gradient instead of the right one (erratum 4, to measure what it costs).

    python experiments/ch05_cnn.py [--quick] [--seeds 5] [--impl xla|im2col|loops] [--grad manual|autodiff]
        [--book-glorot] [--book-conv-grad] [--out DIR]

``--quick``: 600 training and 500 test images, one seed unless ``--seeds`` is given.
"""

from __future__ import annotations

import jax.numpy as jnp

from fdl import dense, fit, serial
from fdl.data import load_mnist, mnist_preprocess, one_hot
from fdl.harness.book import CH05
from fdl.harness.experiment import Results, format_table, mean_sd, parse_args, position, positive_int
from fdl.layers.conv import conv2d
from fdl.layers.core import apply_dropout
from fdl.losses import softmax_cross_entropy
from fdl.metrics import accuracy
from fdl.ops import flatten, op, tanh
from fdl.ops.conv import conv2d_im2col, im2col
from fdl.optim import momentum

BOOK_SEED = 20190402
CONFIGS = [("conv 32 channels (text)", 32, 0.01), ("conv 16 channels (notebook)", 16, 0.1)]


def _book_conv_backward(g, out, x, W):
    """The book's ``Conv2DOperation._param_grad`` (erratum 4): its image patches stay position-major (position,
    example) where the output gradient's rows are example-major (example, position), so for a batch of more
    than one image each patch meets another pixel's gradient. The input gradient is fdl's (a first layer
    passes it to nothing)."""
    n, c, h, w = x.shape
    o, k = W.shape[1], W.shape[2]
    patches = jnp.transpose(im2col(x, k), (1, 0, 2)).reshape(n * h * w, c * k * k)  # position-major rows
    g_rows = jnp.transpose(g, (0, 2, 3, 1)).reshape(n * h * w, o)  # example-major rows
    dW = jnp.transpose((patches.T @ g_rows).reshape(c, k, k, o), (0, 3, 1, 2))
    return conv2d_im2col.backward(g, out, x, W)[0], dW.astype(W.dtype)


book_conv2d = op(_book_conv_backward)(conv2d_im2col.forward)


def book_grad_conv(channels: int, weight_init: str):
    """The chapter's conv layer (tanh, flatten, dropout 0.8) with the book's weight gradient."""
    layer = conv2d(channels, 5, "tanh", weight_init=weight_init, keep_prob=0.8, flatten=True, impl="im2col")

    def apply(params, x, *, key=None, train=False, grad="manual"):
        out = flatten(tanh(book_conv2d(x, params["W"], grad=grad), grad=grad), grad=grad)
        return apply_dropout(out, 0.8, key=key, train=train, grad=grad)

    return layer._replace(apply=apply, name=layer.name + " with the book's weight gradient")


def cnn(channels: int, weight_init: str = "glorot", impl: str = "xla", book_grad: bool = False):
    if book_grad:
        return serial(book_grad_conv(channels, weight_init), dense(10))
    return serial(
        conv2d(channels, 5, "tanh", weight_init=weight_init, keep_prob=0.8, flatten=True, impl=impl), dense(10)
    )


def train_one_epoch(model, lr, data, *, seed, grad="manual", batch_size=60, eval_every=100, log=print):
    """One shuffled epoch through :func:`fdl.fit`, evaluating every ``eval_every`` batches.

    ``seed``: an int, or a list of seeds trained together. Returns (accuracy %, training seconds: the compiled
    chunks alone, no compilation or evaluation); for a list, a list of accuracies, one per seed.
    """
    X_train, Y_train, X_test, Y_test = data
    _, history = fit(
        model,
        softmax_cross_entropy,
        momentum(lr, 0.9),
        X_train,
        Y_train,
        X_test,
        Y_test,
        epochs=1,
        eval_every_steps=eval_every,
        batch_size=batch_size,
        seed=seed,
        early_stopping=False,
        grad=grad,
        metrics={"accuracy": accuracy},
        log=None,
    )
    histories = history if isinstance(history, list) else [history]
    for e in zip(*(h.evals[:-1] for h in histories), strict=True):
        log(
            f"Validation accuracy after {e[0]['step']} batches is "
            + ", ".join(f"{100 * x['accuracy']:.2f}%" for x in e)
        )
    accs, seconds = [100 * h.evals[-1]["accuracy"] for h in histories], sum(histories[0].seconds)
    log(
        "Model validation accuracy after 1 epoch is "
        + ", ".join(f"{a:.2f}%" for a in accs)
        + f" ({seconds:.1f} s of training)"
    )
    return (accs if isinstance(history, list) else accs[0]), seconds


def extra_args(parser):
    parser.add_argument(
        "--seeds",
        type=positive_int,
        default=None,
        help="seeds per configuration, trained together (default 5; 1 with --quick)",
    )
    parser.add_argument("--impl", default="xla", choices=["xla", "im2col", "loops"], help="conv implementation")
    parser.add_argument("--grad", default="manual", choices=["manual", "autodiff"], help="backward passes")
    parser.add_argument("--book-glorot", action="store_true", help="the book's conv init scale (erratum 5)")
    parser.add_argument(
        "--book-conv-grad",
        action="store_true",
        help="train with the book's (wrong) convolution weight gradient (erratum 4)",
    )


def main(argv=None):
    args = parse_args(__doc__.splitlines()[0], argv, default_seed=BOOK_SEED, extra=extra_args)
    X_train, y_train, X_test, y_test = load_mnist()
    eval_every = 100
    if args.quick:
        X_train, y_train, X_test, y_test = X_train[:600], y_train[:600], X_test[:500], y_test[:500]
        eval_every = 5
    X_train, X_test = mnist_preprocess(X_train, X_test, flatten=False)
    data = (X_train, one_hot(y_train, 10), X_test, one_hot(y_test, 10))
    init = "book_glorot" if args.book_glorot else "glorot"

    seeds = [args.seed + i for i in range(args.seeds or (1 if args.quick else 5))]
    results, table = Results("ch05"), []
    for name, channels, lr in CONFIGS:
        book_grad = ", the book's conv weight gradient" if args.book_conv_grad else ""
        print(f"\n--- {name}: lr {lr}, impl {args.impl}, grad {args.grad}{book_grad}, seeds {seeds[0]}..{seeds[-1]}")
        model = cnn(channels, init, args.impl, book_grad=args.book_conv_grad)
        accs, seconds = train_one_epoch(model, lr, data, seed=seeds, grad=args.grad, eval_every=eval_every)
        m, sd = mean_sd(accs)
        results.add(name, "accuracy", m, CH05[name])
        results.add(name, "sd", sd)
        results.add(f"{name}: seconds, all seeds", "seconds", seconds)
        table.append([name, f"{CH05[name]:.2f}", f"{m:.2f} ± {sd:.2f}", position(accs, CH05[name]), f"{seconds:.1f}"])
    n = f"{len(seeds)} seed{'s' * (len(seeds) > 1)}"
    print(
        "\n"
        + format_table(
            ["configuration", "book accuracy (%)", f"fdl accuracy (%, {n})", "book's place", "fdl s (all seeds)"], table
        )
    )
    results.meta["seeds"] = seeds
    results.write(args.out)
    return results


if __name__ == "__main__":
    main()
