"""The five workloads (float32; tracker issue 7), each model built from fdl's own layers.

    W1  MNIST MLP 784 -> dense(89, tanh) -> dense(10), softmax CE, SGD momentum 0.9 lr 0.1, batch 60
    W2  ch. 5 CNN: conv 1->32 5x5 tanh, flatten, dense(25088 -> 10), softmax CE, momentum 0.9 lr 0.01, batch 60
    W3  ch. 7 ConvNet: conv 1->16 5x5 tanh, conv 16->8 5x5 tanh, flatten, dense(6272 -> 32, tanh), dense(10),
        softmax CE, momentum 0.9 lr 0.01, batch 60
    W4  character LSTM (ch. 6): one-hot input (vocabulary 65), hidden 256, sequence 25, batch 32, projection to
        the vocabulary, softmax CE summed over every step (the book's), AdaGrad lr 0.01 after clipping to +/-2
    W5  Boston 13 -> dense(13, sigmoid) -> dense(13, sigmoid) -> dense(1), MSE, SGD lr 0.01, batch 32, 50 epochs

fdl is imported inside the builders only: a PyTorch worker imports this module without loading jax.
The same models in PyTorch are in :mod:`benchmarks.torch_models`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Workload:
    """One workload: its fdl model, loss, optimizer and the size of a timed unit."""

    title: str
    model: Callable  # model(conv_impl) -> the fdl model; conv_impl: the conv2d layers' impl= (None: theirs)
    loss: str  # "ce" softmax cross-entropy, "mse" mean squared error, "ce_sum" (W4) the book's per-step sum
    optimizer: str  # "momentum" (0.9), "sgd", "adagrad" (after clipping the gradients to +/-2)
    lr: float
    batch: int
    input: tuple  # one example's shape (W4: the one-hot vocabulary)
    steps: tuple[int, int] = (0, 0)  # batches per unit (full run, --quick); a unit is one epoch (W4: steps)
    epochs: tuple[int, int] | None = None  # W5: a unit is the whole training, these epochs (full, --quick)
    seq: int = 0  # W4: characters per window

    @property
    def recurrent(self) -> bool:
        return self.seq > 0

    @property
    def vocab(self) -> int:
        return self.input[0]


def _conv_options(conv_impl):
    return {} if conv_impl is None else {"impl": conv_impl}


def _mlp(conv_impl=None):
    from fdl import dense, serial

    return serial(dense(89, "tanh", weight_init="glorot"), dense(10, weight_init="glorot"))


def _cnn(conv_impl=None):
    from fdl import conv2d, dense, serial

    return serial(
        conv2d(32, 5, "tanh", weight_init="glorot", flatten=True, **_conv_options(conv_impl)),
        dense(10, weight_init="glorot"),
    )


def _convnet(conv_impl=None):
    from fdl import conv2d, dense, serial

    conv = dict(weight_init="glorot", **_conv_options(conv_impl))
    return serial(
        conv2d(16, 5, "tanh", **conv),
        conv2d(8, 5, "tanh", flatten=True, **conv),
        dense(32, "tanh", weight_init="glorot"),
        dense(10, weight_init="glorot"),
    )


def _lstm(conv_impl=None):
    from fdl.recurrent import rnn_layer, stack

    return stack(rnn_layer(256, 65, "lstm", weight_scale=0.01))  # the book's LSTM


def _boston(conv_impl=None):
    from fdl import dense, serial

    return serial(
        dense(13, "sigmoid", weight_init="glorot"),
        dense(13, "sigmoid", weight_init="glorot"),
        dense(1, weight_init="glorot"),
    )


WORKLOADS = {
    "W1": Workload("MNIST MLP 784-89-10", _mlp, "ce", "momentum", 0.1, 60, (784,), steps=(1000, 10)),
    "W2": Workload(
        "ch. 5 CNN conv 1->32, dense 25088->10", _cnn, "ce", "momentum", 0.01, 60, (1, 28, 28), steps=(300, 3)
    ),
    "W3": Workload(
        "ch. 7 ConvNet 1->16->8, 6272->32->10", _convnet, "ce", "momentum", 0.01, 60, (1, 28, 28), steps=(300, 3)
    ),
    "W4": Workload(
        "char LSTM hidden 256, seq 25, vocab 65", _lstm, "ce_sum", "adagrad", 0.01, 32, (65,), steps=(300, 3), seq=25
    ),
    "W5": Workload("Boston 13-13-13-1, 50 epochs", _boston, "mse", "sgd", 0.01, 32, (13,), epochs=(50, 2)),
}


def fdl_training(w: Workload, conv_impl=None):
    """``(model, loss, optimizer)`` in fdl for workload ``w``; the loss is None for W4 (its step uses
    :func:`fdl.recurrent.char_loss_fn`)."""
    import optax

    from fdl import losses, optim

    optimizers = {
        "momentum": lambda: optim.momentum(w.lr, 0.9),
        "sgd": lambda: optim.sgd(w.lr),
        "adagrad": lambda: optax.chain(optim.clip(2.0), optim.adagrad(w.lr)),
    }
    loss = {"ce": losses.softmax_cross_entropy, "mse": losses.mean_squared_error, "ce_sum": None}[w.loss]
    return w.model(conv_impl), loss, optimizers[w.optimizer]()


def unit_shape(w: Workload, quick: bool):
    """(epochs per unit, steps per epoch, examples per epoch); W5's steps and examples are None (the Boston
    training set fixes them)."""
    q = int(quick)
    if w.epochs is not None:
        return w.epochs[q], None, None
    return 1, w.steps[q], w.steps[q] * w.batch
