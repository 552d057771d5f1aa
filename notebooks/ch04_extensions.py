# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Chapter 4 — Extensions: softmax cross-entropy, momentum, decay, Glorot, dropout
#
# On MNIST the chapter climbs from 73 % to 97 % test accuracy one idea at a time. Four of those ideas have a
# backward pass or a formula worth checking, and four of the book's errata live here. This notebook trains
# on a 6000-image subset for a few epochs; the full ladder is in the experiment script.
#
# Full experiment: [`experiments/ch04_extensions.py`](../experiments/ch04_extensions.py)
# (`python experiments/ch04_extensions.py --out runs/ch04`, about 35 minutes for every rung and 3 seeds).

# %%
import inspect

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Code

import fdl
from fdl.data import load_mnist, mnist_preprocess, one_hot
from fdl.metrics import accuracy
from fdl.testing import check_model, check_op

jax.config.update("jax_enable_x64", True)


def show(obj):
    """Display the source of an fdl function (it is imported, not copied)."""
    return Code(inspect.getsource(obj), language="python")


# %% [markdown]
# ## Softmax cross-entropy
#
# With `p = softmax(z)` and one-hot targets `y`, the categorical cross-entropy of a batch of `n` rows is
# `L = -sum(y log p) / n`. Its gradient with respect to the logits collapses to `(p - y) / n`: the softmax's
# Jacobian and the log's `1/p` cancel. fdl's backward (it also covers targets that are not one-hot):

# %%
show(fdl.losses.softmax_cross_entropy.backward)

# %% [markdown]
# ### Erratum 1: the loss the book prints is not the loss it differentiates
#
# The book's `SoftmaxCrossEntropy` returns `(p - y) / n` as its gradient, but the value it prints is a
# per-class *binary* cross-entropy, `sum(-y log p - (1 - y) log(1 - p)) / n`. `jax.grad` shows that the
# printed loss has a different gradient, and that fdl's loss is the one whose gradient it returns:

# %%
kz, ky = jax.random.split(jax.random.key(0))
z = jax.random.normal(kz, (6, 10), jnp.float64)
y = jax.nn.one_hot(jax.random.randint(ky, (6,), 0, 10), 10, dtype=jnp.float64)
p = jax.nn.softmax(z)


def printed_by_the_book(z):
    p = jax.nn.softmax(z)
    return jnp.sum(-y * jnp.log(p) - (1 - y) * jnp.log(1 - p)) / z.shape[0]


returned = (p - y) / z.shape[0]
print(
    "|grad of the book's printed loss - (p - y)/n| =",
    float(jnp.max(jnp.abs(jax.grad(printed_by_the_book)(z) - returned))),
)
print(
    "|grad of fdl's loss                - (p - y)/n| =",
    float(jnp.max(jnp.abs(jax.grad(lambda z: fdl.softmax_cross_entropy(z, y, grad="autodiff"))(z) - returned))),
)
check_op(fdl.softmax_cross_entropy, z, y)
print("softmax_cross_entropy: hand-written == jax.grad")

# %% [markdown]
# ## Activations: tanh and ReLU
#
# `tanh` has slope `1 - tanh²`, again computed from the saved output. ReLU passes the gradient where its
# input was positive and blocks it elsewhere:

# %%
show(fdl.ops.relu.backward)

# %% [markdown]
# ### Erratum 3: the book's ReLU gradient is never blocked
#
# The book masks with `output >= 0`; a ReLU's output is never negative, so the mask is always true and the
# gradient flows through negative inputs as if the unit were linear. Plugging that backward into an op (for
# this demonstration only) makes the gradient check fail:

# %%
book_relu = fdl.ops.Op(fdl.ops.relu.forward, lambda g, out, x: (jnp.where(out >= 0, g, 0.0),), name="book_relu")
x = jax.random.normal(jax.random.key(1), (4, 5), jnp.float64)
check_op(fdl.ops.relu, x)
check_op(fdl.ops.tanh, x)
print("relu, tanh: hand-written == jax.grad")
try:
    check_op(book_relu, x, numerical=False)
except AssertionError as error:
    print("the book's ReLU backward fails the check:")
    print("\n".join(str(error).strip().splitlines()[:6]))

# %% [markdown]
# ## Dropout
#
# During training each unit is kept with probability `keep_prob` (a Bernoulli mask drawn from an explicit
# key); the backward multiplies the gradient by the same mask. The book then scales by `keep_prob` at
# inference. `check_model` with `train=True` draws the same masks on both paths:

# %%
show(fdl.ops.dropout.backward)

# %%
net = fdl.serial(fdl.dense(32, "tanh", weight_init="glorot", keep_prob=0.8), fdl.dense(10, weight_init="glorot"))
params = net.init(jax.random.key(2), (20,), jnp.float64)
xs = jax.random.normal(jax.random.key(3), (6, 20), jnp.float64)
check_model(net, params, xs, y, fdl.softmax_cross_entropy, key=jax.random.key(4), train=True)
print(net, "with dropout: hand-written == jax.grad")

# %% [markdown]
# ## Erratum 5: the book's Glorot scale, and erratum 6: decay over one epoch
#
# Glorot's normal initialisation has standard deviation `sqrt(2 / (fan_in + fan_out))`; the book's code
# leaves out the square root. fdl's `"glorot"` is Glorot's and `"book_glorot"` is the book's:

# %%
for name in ("glorot", "book_glorot"):
    print(f"{name:12s} std for 784 -> 89: {fdl.init.init_scale(name, 784, 89):.4f}")

# %% [markdown]
# The book decays the learning rate once per epoch from `lr` to `final_lr`, dividing by `epochs - 1`, so a
# one-epoch run divides by zero. fdl's per-epoch rates (a one-epoch run keeps `lr`):

# %%
for epochs in (1, 2, 5):
    print(epochs, "epochs, linear:     ", np.round(fdl.optim.epoch_learning_rates(0.15, 0.05, "linear", epochs), 4))
print(5, "epochs, exponential:", np.round(fdl.optim.epoch_learning_rates(0.2, 0.05, "exponential", 5), 4))

# %% [markdown]
# ## Training on an MNIST subset
#
# The book's preprocessing (subtract the training mean, divide by the training standard deviation), 6000
# training and 1000 test images, batch 60, 5 epochs. Three rungs of the ladder: plain SGD with softmax
# cross-entropy; with momentum; and with momentum, linear decay, Glorot initialisation and dropout.

# %%
X_train, y_train, X_test, y_test = load_mnist()  # cached in ~/.cache/fdl after the first call
X_train, X_test = mnist_preprocess(X_train[:6000], X_test[:1000])
Y_train, Y_test = one_hot(y_train[:6000], 10), one_hot(y_test[:1000], 10)

rungs = {
    "SGD 0.1": (fdl.serial(fdl.dense(89, "tanh"), fdl.dense(10)), fdl.optim.sgd(0.1)),
    "+ momentum 0.9": (fdl.serial(fdl.dense(89, "tanh"), fdl.dense(10)), fdl.optim.momentum(0.1, 0.9)),
    "+ decay, Glorot, dropout": (
        fdl.serial(fdl.dense(89, "tanh", weight_init="glorot", keep_prob=0.8), fdl.dense(10, weight_init="glorot")),
        fdl.optim.momentum(0.15, 0.9, final_lr=0.05, decay_type="linear"),
    ),
}
histories = {}
for name, (net, optimizer) in rungs.items():
    params, history = fdl.fit(
        net,
        fdl.softmax_cross_entropy,
        optimizer,
        X_train,
        Y_train,
        X_test,
        Y_test,
        epochs=5,
        eval_every=1,
        batch_size=60,
        seed=20190119,
        metrics={"accuracy": accuracy},
        early_stopping=False,
        log=None,
    )
    histories[name] = history
    print(f"{name:26s} test accuracy {100 * history.evals[-1]['accuracy']:.2f} %")

# %%
fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.5))
for name, history in histories.items():
    epochs = [e["epoch"] for e in history.evals]
    (line,) = ax_loss.plot(epochs, history.train_loss, label=f"{name}: train")
    ax_loss.plot(epochs, [e["loss"] for e in history.evals], "o--", color=line.get_color(), label=f"{name}: test")
    ax_acc.plot(epochs, [100 * e["accuracy"] for e in history.evals], "o-", label=name)
ax_loss.set_xlabel("epoch")
ax_loss.set_ylabel("cross-entropy")
ax_loss.legend(fontsize=7)
ax_acc.set_xlabel("epoch")
ax_acc.set_ylabel("test accuracy (%)")
ax_acc.legend(fontsize=7)
plt.tight_layout()
plt.show()
