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
# # Chapter 5 — Convolutional networks
#
# A convolution slides a small kernel over the image: output pixel `(i, j)` of output channel `o` is the sum,
# over input channels `c` and kernel offsets `(p, q)`, of `x_pad[c, i + p, j + q] · W[c, o, p, q]`, with
# `k // 2` zeros padded around the image so the output keeps its size. Each input pixel therefore feeds `k²`
# output pixels, and the backward has to collect the gradient from all of them: the input gradient is the
# output gradient convolved with the *flipped* kernel, and the kernel gradient is the input correlated with
# the output gradient, summed over the batch.
#
# Full experiment: [`experiments/ch05_cnn.py`](../experiments/ch05_cnn.py)
# (`python experiments/ch05_cnn.py --out runs/ch05`).

# %%
import inspect

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
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
# ## One dimension first, with loops
#
# The chapter starts in 1-D with explicit loops. Its printed checks: for `x = [1, 2, 3, 4, 5]`, kernel
# `[1, 1, 1]` and the loss `sum(out)`, the input gradient is `[2, 3, 3, 3, 2]` (edge pixels reach only two
# outputs) and the kernel gradient `[10, 15, 14]`; for a batch of two rows `[0..6]`, `[1..7]` the kernel
# gradient is `[36, 49, 48]`. fdl's loop op, differentiated through its hand-written backward:

# %%
x1 = jnp.arange(1.0, 6.0)
w1 = jnp.ones(3)
dx, dw = jax.grad(lambda x, w: fdl.ops.conv1d_loops(x, w).sum(), argnums=(0, 1))(x1, w1)
print("input gradient ", dx, " kernel gradient", dw)
batch = jnp.stack([jnp.arange(0.0, 7.0), jnp.arange(1.0, 8.0)])
print("batch kernel gradient", jax.grad(lambda w: fdl.ops.conv1d_loops(batch, w).sum())(w1))

# %% [markdown]
# ## The 2-D backward, with loops and with XLA
#
# The chapter's multi-channel, batched loops (four loops remain; the pixel loops are array expressions):

# %%
show(fdl.ops.conv2d_loops.backward)

# %% [markdown]
# The op to train with computes the same two products as XLA convolutions, written channels-last so they
# stay fast inside a compiled epoch:

# %%
show(fdl.ops.conv2d.backward)

# %% [markdown]
# ## Gradient checks against `jax.grad`

# %%
kx, kw = jax.random.split(jax.random.key(0))
x = jax.random.normal(kx, (2, 3, 7, 6), jnp.float64)  # (batch, in channels, height, width)
W = jax.random.normal(kw, (3, 4, 3, 3), jnp.float64)  # (in channels, out channels, k, k)
check_op(fdl.ops.conv2d, x, W)
check_op(fdl.ops.conv2d_loops, x, W)
print("conv2d (XLA) and conv2d_loops (loops): hand-written == jax.grad")
print("same forward:", bool(jnp.allclose(fdl.ops.conv2d(x, W), fdl.ops.conv2d_loops(x, W))))

# %% [markdown]
# ## Erratum 4: the book does not flip the kernel
#
# The book computes the input gradient by convolving the output gradient with the kernel as it is. Input
# pixel `i` reaches output pixel `i - p` through kernel entry `p`, so going backwards the kernel has to be read
# in reverse. With a symmetric kernel the two agree, which is why the book's 1-D check passes; with any other
# kernel they do not. Both versions below are built from `fdl.ops.conv2d` itself, with input and output
# channels swapped:

# %%
g = jax.random.normal(jax.random.key(1), (2, 4, 7, 6), jnp.float64)  # a gradient arriving at the output
_, vjp = jax.vjp(lambda x: fdl.ops.conv2d(x, W, grad="autodiff"), x)
truth = vjp(g)[0]
flipped = fdl.ops.conv2d(g, jnp.transpose(jnp.flip(W, (2, 3)), (1, 0, 2, 3)))
unflipped = fdl.ops.conv2d(g, jnp.transpose(W, (1, 0, 2, 3)))
print("flipped kernel (fdl):  largest error", float(jnp.max(jnp.abs(flipped - truth))))
print("unflipped (the book):  largest error", float(jnp.max(jnp.abs(unflipped - truth))))

# %% [markdown]
# The book's batched kernel gradient also pairs each example's input with another example's output gradient
# when the batch has more than one image; fdl's pairs each with its own, which the check above confirms for
# a batch of 2.
#
# ## Training a small CNN on MNIST
#
# The chapter's model with the book notebook's 16 channels and the text's learning rate: Conv2D(16 channels,
# 5x5, tanh, Glorot, flatten, dropout 0.8) -> Dense(10); softmax cross-entropy; SGD with momentum 0.9 at
# 0.01; batch 60. Here on 4000 training and 1000 test images for 3 epochs (the book trains one epoch on all
# 60000).

# %%
X_train, y_train, X_test, y_test = load_mnist()
X_train, X_test = mnist_preprocess(X_train[:4000], X_test[:1000], flatten=False)  # NCHW, one channel
Y_train, Y_test = one_hot(y_train[:4000], 10), one_hot(y_test[:1000], 10)
cnn = fdl.serial(
    fdl.conv2d(16, 5, "tanh", weight_init="glorot", keep_prob=0.8, flatten=True), fdl.dense(10, weight_init="glorot")
)
params, history = fdl.fit(
    cnn,
    fdl.softmax_cross_entropy,
    fdl.optim.momentum(0.01, 0.9),
    X_train,
    Y_train,
    X_test,
    Y_test,
    epochs=3,
    eval_every=1,
    batch_size=60,
    seed=20190402,
    metrics={"accuracy": accuracy},
    early_stopping=False,
    log=None,
)
for e in history.evals:
    print(f"epoch {e['epoch']}: test loss {e['loss']:.3f}, accuracy {100 * e['accuracy']:.2f} %")

# %%
fig, (ax_loss, ax_w) = plt.subplots(1, 2, figsize=(10, 3.5))
epochs = [e["epoch"] for e in history.evals]
ax_loss.plot(epochs, history.train_loss, "o-", label="train (mean over the epoch)")
ax_loss.plot(epochs, [e["loss"] for e in history.evals], "o--", label="test")
ax_loss.set_xlabel("epoch")
ax_loss.set_ylabel("cross-entropy")
ax_loss.legend()
kernels = params[0]["W"][0]  # (16, 5, 5): the learned kernels of the one input channel
ax_w.imshow(jnp.concatenate(list(kernels), axis=1), cmap="RdBu")
ax_w.set_title("the 16 learned 5x5 kernels")
ax_w.axis("off")
plt.tight_layout()
plt.show()
