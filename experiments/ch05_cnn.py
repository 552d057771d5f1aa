"""Chapter 5, CNNs: the book's one-layer convolutional network on MNIST, one epoch.

conv (5x5, tanh, Glorot, dropout 0.8, flatten) -> dense(10, linear, the book's default N(0, 1) init); softmax
cross-entropy; SGD with momentum 0.9; batch 60; one epoch; the validation accuracy on the 10 000 test images
after every 100 batches, as the book prints it. Two configurations: 32 channels with lr 0.01 (the text) and
16 channels with lr 0.1 (the notebook). Seed 20190402 as the book's. fdl's "glorot" is Glorot's scale with
the convolution's fans (erratum 5; --book-glorot uses the book's 2 / (in + out) channels).

    python experiments/ch05_cnn.py [--quick] [--impl xla|im2col|loops] [--grad manual|autodiff] [--out DIR]
"""

from __future__ import annotations

from fdl import dense, fit, serial
from fdl.data import load_mnist, mnist_preprocess, one_hot
from fdl.harness.book import CH05
from fdl.harness.experiment import Results, format_table, parse_args
from fdl.layers.conv import conv2d
from fdl.losses import softmax_cross_entropy
from fdl.metrics import accuracy
from fdl.optim import momentum

BOOK_SEED = 20190402
CONFIGS = [("conv 32 channels (text)", 32, 0.01), ("conv 16 channels (notebook)", 16, 0.1)]


def cnn(channels: int, weight_init: str = "glorot", impl: str = "xla"):
    return serial(conv2d(channels, 5, "tanh", weight_init=weight_init, keep_prob=0.8, flatten=True, impl=impl),
                  dense(10))


def train_one_epoch(model, lr, data, *, seed, grad="manual", batch_size=60, eval_every=100, log=print):
    """One shuffled epoch through :func:`fdl.fit`, evaluating every ``eval_every`` batches.

    Returns (accuracy %, training seconds: the compiled chunks alone, no compilation or evaluation).
    """
    X_train, Y_train, X_test, Y_test = data
    params, history = fit(model, softmax_cross_entropy, momentum(lr, 0.9), X_train, Y_train, X_test, Y_test,
                          epochs=1, eval_every_steps=eval_every, batch_size=batch_size, seed=seed,
                          early_stopping=False, grad=grad, metrics={"accuracy": accuracy}, log=None)
    for e in history.evals[:-1]:
        log(f"Validation accuracy after {e['step']} batches is {100 * e['accuracy']:.2f}%")
    acc, seconds = 100 * history.evals[-1]["accuracy"], sum(history.seconds)
    log(f"Model validation accuracy after 1 epoch is {acc:.2f}% ({seconds:.1f} s of training)")
    return acc, seconds


def extra_args(parser):
    parser.add_argument("--impl", default="xla", choices=["xla", "im2col", "loops"], help="conv implementation")
    parser.add_argument("--grad", default="manual", choices=["manual", "autodiff"], help="backward passes")
    parser.add_argument("--book-glorot", action="store_true", help="the book's conv init scale (erratum 5)")


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

    results, table = Results("ch05"), []
    for name, channels, lr in CONFIGS:
        print(f"\n--- {name}: lr {lr}, impl {args.impl}, grad {args.grad}")
        model = cnn(channels, init, args.impl)
        acc, seconds = train_one_epoch(model, lr, data, seed=args.seed, grad=args.grad, eval_every=eval_every)
        results.add(name, "accuracy", acc, CH05[name])
        results.add(f"{name}: seconds per epoch", "seconds", seconds)
        table.append([name, f"{CH05[name]:.2f}", f"{acc:.2f}", f"{seconds:.1f}"])
    print("\n" + format_table(["configuration", "book accuracy (%)", "fdl accuracy (%)", "fdl s/epoch"], table))
    results.write(args.out)
    return results


if __name__ == "__main__":
    main()
