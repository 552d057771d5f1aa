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
# # Chapter 3 — Deep learning from scratch: operations, layers, a trainer
#
# Chapter 3 turns chapter 2's hand-written formulas into parts that compose. An *operation* knows its
# forward and, given the gradient of the loss with respect to its output, returns the gradient with respect
# to its input (and its parameter, if it has one). A *layer* is a few operations in a row; a *network* is
# layers in a row plus a loss. Backpropagation is then just calling the backwards in reverse order.
#
# Full experiment: [`experiments/ch03_deep_learning.py`](../experiments/ch03_deep_learning.py)
# (`python experiments/ch03_deep_learning.py --out runs/ch03`).

# %%
import inspect

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
from IPython.display import Code

import fdl
from fdl.data import boston_split
from fdl.harness import book
from fdl.metrics import mae, rmse
from fdl.testing import check_model, check_op

jax.config.update("jax_enable_x64", True)


def show(obj):
    """Display the source of an fdl function (it is imported, not copied)."""
    return Code(inspect.getsource(obj), language="python")


# %% [markdown]
# ## The operations of a dense layer
#
# `out = X W`: the gradient for `X` is `G Wᵀ` and for `W` is `Xᵀ G`, where `G` is the gradient arriving at
# `out` (each is the only arrangement of `G` and the other factor whose shape matches). `out = X + B`, with
# the bias row broadcast over the batch: `X` receives `G` unchanged and `B` the column sums of `G`.
# In fdl each operation is one forward function and one backward function, joined by the `@op(backward)`
# decorator into a `jax.custom_vjp`:

# %%
show(fdl.ops.weight_multiply.backward)

# %%
show(fdl.ops.bias_add.backward)

# %% [markdown]
# The loss is an operation too. The book's mean squared error divides the summed squared error by the batch
# size, so its gradient is `2 (P - Y) / n`:

# %%
show(fdl.losses.mean_squared_error.backward)

# %% [markdown]
# ## Gradient checks against `jax.grad`
#
# Each op, then a whole model with its loss: `check_model` runs the same model definition with
# `grad="manual"` (the backwards above) and with `grad="autodiff"` (`jax.grad` of the plain forwards) and
# compares the gradients for every parameter and the input. It raises on any disagreement.

# %%
k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
X = jax.random.normal(k1, (8, 13), jnp.float64)
W = jax.random.normal(k2, (13, 4), jnp.float64)
B = jax.random.normal(k3, (1, 4), jnp.float64)
check_op(fdl.ops.weight_multiply, X, W)
check_op(fdl.ops.bias_add, X @ W, B)
check_op(fdl.mean_squared_error, X @ W, jnp.ones((8, 4)))
print("weight_multiply, bias_add, mean_squared_error: hand-written == jax.grad")

model = fdl.serial(fdl.dense(13, "sigmoid"), fdl.dense(13, "sigmoid"), fdl.dense(1))
params = model.init(jax.random.key(1), (13,), jnp.float64)
check_model(model, params, X, jnp.ones((8, 1)), fdl.mean_squared_error)
print(model, ": every parameter's gradient agrees")

# %% [markdown]
# ## Training the book's three Boston models
#
# `fdl.fit` is the book's `Trainer.fit`: shuffle every epoch, evaluate on the test set every `eval_every`
# epochs, and stop early (returning the last evaluated model) when the test loss rises. The settings are the
# book's (SGD 0.01, 50 epochs, evaluation every 10, batch 32, weights N(0, 1), seed 20190501).

# %%
X_train, X_test, y_train, y_test = boston_split()
models = {
    "linear": fdl.serial(fdl.dense(1)),
    "one hidden layer": fdl.serial(fdl.dense(13, "sigmoid"), fdl.dense(1)),
    "two hidden layers": fdl.serial(fdl.dense(13, "sigmoid"), fdl.dense(13, "sigmoid"), fdl.dense(1)),
}
histories = {}
for name, net in models.items():
    params, history = fdl.fit(
        net,
        fdl.mean_squared_error,
        fdl.optim.sgd(0.01),
        X_train,
        y_train,
        X_test,
        y_test,
        epochs=50,
        eval_every=10,
        batch_size=32,
        seed=20190501,
        log=None,
    )
    histories[name] = history
    pred = fdl.predict(net, params, jnp.asarray(X_test, jnp.float32))
    print(
        f"{name:18s} MAE {float(mae(pred, y_test)):.2f} RMSE {float(rmse(pred, y_test)):.2f}   "
        f"(book: MAE {book.CH03[name]['mae']}, RMSE {book.CH03[name]['rmse']})"
    )
    if history.stopped:
        print("   ", history.stopped)

# %%
fig, ax = plt.subplots(figsize=(7, 4))
for name, history in histories.items():
    (line,) = ax.plot(range(1, len(history.train_loss) + 1), history.train_loss, label=f"{name}: train")
    ax.plot(
        [e["epoch"] for e in history.evals],
        [e["loss"] for e in history.evals],
        "o--",
        color=line.get_color(),
        label=f"{name}: test",
    )
ax.set_xlabel("epoch")
ax.set_ylabel("mean squared error")
ax.set_yscale("log")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## Where fdl differs from the book
#
# Chapter 3's operations match the book's formulas exactly; its errata are in later chapters (the book's
# ReLU, softmax cross-entropy, learning-rate decay and Glorot scale in chapter 4). The one difference here is
# randomness: the book seeds NumPy's global generator, fdl derives every key (initialisation, shuffling) from
# `seed`, so single runs differ from the book's, whose figures lie within fdl's spread over seeds (docs/results.md);
# `python experiments/ch03_deep_learning.py --replay-book` feeds fdl the book's own NumPy draws instead.
