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
# # Chapter 2 — Fundamentals: regression with gradients derived by hand
#
# Before any framework, the chapter fits Boston house prices twice: a linear model `P = X W + B`, and a
# network with one hidden layer of 13 sigmoid units. Both are trained by plain stochastic gradient descent
# with gradients written out by the chain rule. Here we check those gradients against `jax.grad`, show where
# the book's arithmetic is not the gradient of its loss, and train both models.
#
# Full experiment: [`experiments/ch02_fundamentals.py`](../experiments/ch02_fundamentals.py)
# (`python experiments/ch02_fundamentals.py --out runs/ch02`).

# %%
import inspect

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Code

from fdl import metrics
from fdl.chapters import fundamentals as F2
from fdl.data import boston_split
from fdl.harness import book

jax.config.update("jax_enable_x64", True)


def show(obj):
    """Display the source of an fdl function (it is imported, not copied)."""
    return Code(inspect.getsource(obj), language="python")


X_train, X_test, y_train, y_test = boston_split()  # the book's standardisation and 354 / 152 split
print(X_train.shape, y_train.shape, X_test.shape, y_test.shape)

# %% [markdown]
# ## Linear regression
#
# The loss is the mean of `(y - P)²` over a batch of `n` rows. Going backwards: `dL/dP = -2 (y - P) / n`;
# `P = N + B` passes that on unchanged to `N` and, summed over the rows, to `B`; `N = X W` gives
# `dL/dW = Xᵀ dL/dN`. fdl's function for it (`reduction="mean"` is the exact gradient of that mean):

# %%
show(F2.loss_gradients)

# %% [markdown]
# ## Gradient check against `jax.grad`
#
# The forward runs on JAX arrays too, so `jax.grad` can differentiate the very same loss:

# %%
rng = np.random.RandomState(0)
xb, yb = jnp.asarray(X_train[:23]), jnp.asarray(y_train[:23])
for model in ("linear_regression", "neural_network"):
    init, forward, gradients, _ = F2.MODELS[model]
    weights = {
        k: jnp.asarray(v) for k, v in (init(rng, 13) if model == "linear_regression" else init(rng, 13, 13)).items()
    }
    _, info = forward(xb, yb, weights)
    by_hand = gradients(info, weights, "mean")
    by_jax = jax.grad(lambda w, fwd=forward: fwd(xb, yb, w)[0])(weights)
    worst = max(float(jnp.max(jnp.abs(by_hand[k] - by_jax[k]))) for k in weights)
    print(f"{model}: largest |hand-derived - jax.grad| = {worst:.1e}")

# %% [markdown]
# ## Erratum 7: the book's gradients are not those of its loss
#
# The book's loss is the *mean* squared error, but it *sums* the per-row gradients, so its step is `n`
# times the true gradient step (23 with its batch size). Its two-layer network also drops the factor 2 of
# the square, and sums the hidden-bias gradient over the hidden units into one number that every hidden
# bias then receives. `reduction="book"` reproduces that arithmetic, so we can measure the difference:

# %%
init, forward, gradients, _ = F2.MODELS["neural_network"]
weights = init(np.random.RandomState(1), 13, 13)
_, info = forward(X_train[:23], y_train[:23], weights)
true, theirs = gradients(info, weights, "mean"), gradients(info, weights, "book")
print("W2: book / true =", float(np.median(theirs["W2"] / true["W2"])), "(23 rows / 2)")
print("B1, book: one value for all 13 hidden units:", np.unique(np.round(theirs["B1"], 12)).size == 1)
print("B1, true: ", np.round(true["B1"][0, :4], 4), "...")

# %% [markdown]
# ## Training
#
# With the book's seeds and `reduction="book"`, fdl reproduces the book's figures; with the true (averaged)
# gradient at the same learning rate, the steps are 23 times smaller and linear regression has not converged
# after the book's 1000 iterations. A shorter run of each, with its loss curve:

# %%
runs = {}
for model, iters in (("linear_regression", 1000), ("neural_network", 3000)):
    for reduction in ("book", "mean"):
        weights, losses = F2.train_regression(model, X_train, y_train, n_iter=iters, reduction=reduction, log=None)
        pred = F2.predict_regression(model, X_test, weights)
        runs[model, reduction] = losses
        mae, rmse = float(metrics.mae(pred, y_test)), float(metrics.rmse(pred, y_test))
        print(f"{model:18s} {reduction:4s}: test MAE {mae:.4f}  RMSE {rmse:.4f}")
ls = F2.least_squares(X_train, y_train)
pred = F2.predict_regression("linear_regression", X_test, ls)
mae, rmse = float(metrics.mae(pred, y_test)), float(metrics.rmse(pred, y_test))
print(f"least squares          : test MAE {mae:.4f}  RMSE {rmse:.4f}", f"(book {book.CH02['least squares']})")

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
for ax, model in zip(axes, ("linear_regression", "neural_network"), strict=True):
    for reduction in ("book", "mean"):
        losses = runs[model, reduction]
        smooth = np.convolve(losses, np.ones(50) / 50, mode="valid")  # running mean of 50 batch losses
        ax.plot(smooth, label=f"reduction={reduction!r}")
    ax.set_title(model)
    ax.set_xlabel("iteration")
    ax.set_ylabel("training MSE (running mean)")
    ax.set_yscale("log")
    ax.legend()
plt.tight_layout()
plt.show()
