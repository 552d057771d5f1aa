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
# # Appendix — the matrix chain rule, and convolution as one matrix product
#
# The book's appendix does two things. It justifies the matrix form of the chain rule used since chapter 1:
# for `N = X W`, entry `X[i, k]` reaches `N[i, j]` with weight `W[k, j]` for every `j`, so
# `dL/dX[i, k] = sum_j dL/dN[i, j] W[k, j]`, which is the matrix product `dL/dN Wᵀ`. And it rewrites the
# convolution of chapter 5 as a matrix product: cut every `k x k` window of the padded image out as one row
# (*im2col*), and the convolution is those rows times the kernel laid out as a matrix. Both gradients are then
# matrix products too, which is why this form was the fast one before dedicated convolution kernels.
#
# Full experiment: the chapter 5 script trains with either form,
# [`experiments/ch05_cnn.py`](../experiments/ch05_cnn.py).

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
from fdl.testing import check_op

jax.config.update("jax_enable_x64", True)


def show(obj):
    """Display the source of an fdl function (it is imported, not copied)."""
    return Code(inspect.getsource(obj), language="python")


# %% [markdown]
# ## The matrix chain rule, entry by entry
#
# The sum over `j` above, written as loops, against the matrix product:

# %%
kx, kw, kg = jax.random.split(jax.random.key(0), 3)
X = jax.random.normal(kx, (3, 4), jnp.float64)
W = jax.random.normal(kw, (4, 2), jnp.float64)
G = jax.random.normal(kg, (3, 2), jnp.float64)  # dL/dN arriving from above
Gn, Wn = np.asarray(G), np.asarray(W)
by_entries = np.array([[sum(Gn[i, j] * Wn[k, j] for j in range(2)) for k in range(4)] for i in range(3)])
print("largest |entrywise - G Wᵀ| =", float(np.max(np.abs(by_entries - G @ W.T))))

# %% [markdown]
# ## im2col
#
# `im2col(x, k)` turns a batch `(n, C, H, W)` into patches `(n, H·W, C·k·k)`: row `i·W + j` is the window
# centred on pixel `(i, j)`. The kernel `(C, out, k, k)` becomes a `(C·k·k, out)` matrix, and their product is
# the convolution's output, one row per pixel:

# %%
x = jax.random.normal(kx, (2, 3, 6, 5), jnp.float64)
K = jax.random.normal(kw, (3, 4, 3, 3), jnp.float64)
patches = fdl.ops.im2col(x, 3)
print("patches", patches.shape)
kernel_matrix = jnp.transpose(K, (0, 2, 3, 1)).reshape(3 * 3 * 3, 4)  # rows in im2col's (channel, p, q) order
out = jnp.transpose((patches @ kernel_matrix).reshape(2, 6, 5, 4), (0, 3, 1, 2))
print("same as conv2d:", bool(jnp.allclose(out, fdl.ops.conv2d(x, K))))

# %% [markdown]
# ## The backward as matrix products
#
# The kernel gradient is `patchesᵀ @ G` (each kernel entry meets every pixel's window once); the input
# gradient is the im2col of the output gradient times the *flipped* kernel with input and output channels
# swapped. fdl's op:

# %%
show(fdl.ops.conv2d_im2col.backward)

# %%
check_op(fdl.ops.conv2d_im2col, x, K)
print("conv2d_im2col: hand-written == jax.grad")

# %% [markdown]
# ## Erratum 4 in matrix form
#
# The book builds the input gradient's matrix from the kernel as it is, not flipped. The two matrices, each
# applied to the im2col of an output gradient, against `jax.grad`:

# %%
g = jax.random.normal(kg, (2, 4, 6, 5), jnp.float64)
truth = jax.vjp(lambda x: fdl.ops.conv2d(x, K, grad="autodiff"), x)[1](g)[0]
g_patches = fdl.ops.im2col(g, 3).reshape(2 * 6 * 5, 4 * 3 * 3)
for label, kernel in (("flipped (fdl)", jnp.flip(K, (2, 3))), ("unflipped (the book)", K)):
    matrix = jnp.transpose(jnp.transpose(kernel, (1, 0, 2, 3)), (0, 2, 3, 1)).reshape(4 * 3 * 3, 3)
    dx = jnp.transpose((g_patches @ matrix).reshape(2, 6, 5, 3), (0, 3, 1, 2))
    print(f"{label:22s} largest error {float(jnp.max(jnp.abs(dx - truth))):.2e}")

# %% [markdown]
# ## Training with either form
#
# `fdl.conv2d(..., impl="im2col")` builds the layer on the matrix form, `impl="xla"` (the default) on XLA's
# convolution. From one seed they train the same network: Conv2D(8, 5x5, tanh, Glorot, flatten) -> Dense(10)
# on 2000 MNIST images for 2 epochs.

# %%
X_train, y_train, X_test, y_test = load_mnist()
X_train, X_test = mnist_preprocess(X_train[:2000], X_test[:500], flatten=False)
Y_train, Y_test = one_hot(y_train[:2000], 10), one_hot(y_test[:500], 10)
histories = {}
for impl in ("xla", "im2col"):
    cnn = fdl.serial(
        fdl.conv2d(8, 5, "tanh", weight_init="glorot", flatten=True, impl=impl), fdl.dense(10, weight_init="glorot")
    )
    _, histories[impl] = fdl.fit(
        cnn,
        fdl.softmax_cross_entropy,
        fdl.optim.momentum(0.01, 0.9),
        X_train,
        Y_train,
        X_test,
        Y_test,
        epochs=2,
        eval_every=1,
        batch_size=60,
        seed=0,
        metrics={"accuracy": accuracy},
        early_stopping=False,
        log=None,
    )
    print(f"{impl:7s} test accuracy after each epoch:", [f"{100 * e['accuracy']:.1f} %" for e in histories[impl].evals])

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
for impl, style in (("xla", "o-"), ("im2col", "x:")):
    epochs = range(1, len(histories[impl].train_loss) + 1)
    ax.plot(epochs, histories[impl].train_loss, style, label=f"{impl}: train")
    ax.plot(
        [e["epoch"] for e in histories[impl].evals],
        [e["loss"] for e in histories[impl].evals],
        style,
        label=f"{impl}: test",
    )
ax.set_xlabel("epoch")
ax.set_ylabel("cross-entropy")
ax.legend()
plt.show()
