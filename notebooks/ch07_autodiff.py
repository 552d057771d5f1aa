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
# # Chapter 7 — The same models with automatic differentiation
#
# The book's last chapter rebuilds its models in PyTorch, where the backward passes are derived
# automatically. Here the automatic differentiation is `jax.grad` and the optimizer is optax. Every fdl
# model can already run both ways: `grad="manual"` uses the hand-written backward passes of chapters 3 to 6,
# `grad="autodiff"` lets `jax.grad` differentiate the plain forwards. This notebook shows the switch, checks
# that both give the same gradients for the chapter's convolutional network, and trains its Boston model
# both ways from one seed.
#
# Full experiment: [`experiments/ch07_autodiff.py`](../experiments/ch07_autodiff.py)
# (`python experiments/ch07_autodiff.py --out runs/ch07`: Boston, the MNIST ConvNet, a character LSTM and the
# convolutional autoencoder, each trained both ways).

# %%
import inspect

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from IPython.display import Code

import fdl
from fdl.data import boston_split
from fdl.harness import book
from fdl.testing import check_model

jax.config.update("jax_enable_x64", True)


def show(obj):
    """Display the source of an fdl function (it is imported, not copied)."""
    return Code(inspect.getsource(obj), language="python")


# %% [markdown]
# ## One op, two derivatives
#
# An fdl op is a plain forward plus the book's backward. Called with `grad="manual"` it is a
# `jax.custom_vjp` whose VJP is the backward; called with `grad="autodiff"` it is just the forward, and
# `jax.grad` derives the VJP from the primitives inside it (matrix products, `tanh`, convolutions). The switch
# is a few lines:

# %%
show(fdl.ops.Op.__call__)

# %%
show(fdl.ops.Op._manual)

# %% [markdown]
# A layer passes `grad` down to its ops, so one model definition serves both. The ConvNet of the chapter,
# scaled down (two 3x3 conv layers of 4 and 2 channels on 8x8 images, a dense layer of 16, dropout 0.8
# everywhere), checked with the same dropout masks on both paths: the forwards, the gradients of every
# parameter and of the input for a random cotangent, and the hand-written gradients against finite
# differences.

# %%
convnet = fdl.serial(
    fdl.conv2d(4, 3, "tanh", weight_init="glorot", keep_prob=0.8),
    fdl.conv2d(2, 3, "tanh", weight_init="glorot", keep_prob=0.8, flatten=True),
    fdl.dense(16, "tanh", weight_init="glorot", keep_prob=0.8),
    fdl.dense(10, weight_init="glorot"),
)
params = convnet.init(jax.random.key(0), (1, 8, 8), jnp.float64)
x = jax.random.normal(jax.random.key(1), (5, 1, 8, 8), jnp.float64)
y = jax.nn.one_hot(jnp.arange(5), 10, dtype=jnp.float64)
check_model(convnet, params, x, y, fdl.softmax_cross_entropy, key=jax.random.key(2), train=True)
print(convnet, ": hand-written == jax.grad")

# %% [markdown]
# ## Training with optax, both ways
#
# The chapter's Boston model: Dense(13, tanh, dropout 0.8) -> Dense(1), mean squared error, SGD 0.001 with
# PyTorch's momentum 0.9 (`optax.sgd(0.001, momentum=0.9)`), batch 32, 100 epochs. Here with fdl's Glorot
# initialisation (the experiment script reproduces PyTorch's default initialisation). Any optax
# transformation can be passed to `fit` (`optax.adam(1e-3)`, for instance).

# %%
X_train, X_test, y_train, y_test = boston_split()
model = fdl.serial(fdl.dense(13, "tanh", weight_init="glorot", keep_prob=0.8), fdl.dense(1, weight_init="glorot"))
runs = {}
for label, optimizer, grad in [
    ("SGD momentum, hand-written", optax.sgd(0.001, momentum=0.9), "manual"),
    ("SGD momentum, jax.grad", optax.sgd(0.001, momentum=0.9), "autodiff"),
]:
    params, history = fdl.fit(
        model,
        fdl.mean_squared_error,
        optimizer,
        X_train,
        y_train,
        X_test,
        y_test,
        epochs=100,
        eval_every=10,
        batch_size=32,
        seed=0,
        grad=grad,
        early_stopping=False,
        log=None,
    )
    runs[label] = history
    print(f"{label:28s} test MSE {history.evals[-1]['loss']:.2f}   (book, PyTorch: {book.CH07['boston']['mse']})")
a, b = (np.asarray(runs[k].train_loss) for k in ("SGD momentum, hand-written", "SGD momentum, jax.grad"))
print("largest relative difference of the two SGD training curves:", float(np.max(np.abs(a - b) / b)))

# %%
fig, ax = plt.subplots(figsize=(7, 4))
for label, history in runs.items():
    style = ":" if "jax.grad" in label else "-"
    (line,) = ax.plot(range(1, len(history.train_loss) + 1), history.train_loss, style, label=f"{label}: train")
    ax.plot([e["epoch"] for e in history.evals], [e["loss"] for e in history.evals], "o", color=line.get_color())
ax.set_xlabel("epoch")
ax.set_ylabel("mean squared error (dots: test)")
ax.set_title("the two curves lie on top of each other")
ax.set_yscale("log")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## Where fdl differs from the book
#
# Chapter 7 reuses the corrected ops of the earlier chapters, so none of the book's errata reach it: the
# book's PyTorch code gets its gradients from PyTorch, which is right. The remaining differences are the
# framework's: PyTorch's default initialisation and conv bias (reproduced by the experiment script, not here)
# and its random number generator (not reproducible in JAX), so single runs differ from the book's.
