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
# # Chapter 1 — Foundations: derivatives and the chain rule
#
# The whole book rests on one idea: if a computation is a chain of simple functions, its derivative is the
# product of the simple functions' derivatives, each taken at the value that reached it. This notebook checks
# that idea three ways: against a finite difference, against `jax.grad`, and against the book's printed numbers.
#
# Full experiment: [`experiments/ch01_foundations.py`](../experiments/ch01_foundations.py)
# (`python experiments/ch01_foundations.py --out runs/ch01`).

# %%
import inspect

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Code

import fdl
from fdl.chapters import foundations as F
from fdl.harness import book
from fdl.testing import check_op

jax.config.update("jax_enable_x64", True)  # gradient checks are run in float64


def show(obj):
    """Display the source of an fdl function (it is imported, not copied)."""
    return Code(inspect.getsource(obj), language="python")


# %% [markdown]
# ## The derivative, numerically
#
# The derivative of `f` at `x` is the slope of `f` over a vanishing interval. With a small but finite
# step `d`, the symmetric difference `(f(x + d) - f(x - d)) / (2 d)` is already accurate to about `d²`.
# For `f(x) = x²` it is exact, because the error term involves the third derivative, which is zero.

# %%
x = np.linspace(-3, 3, 7)
print("central difference:", F.deriv(F.square, x))
print("exact 2x:          ", F.square_deriv(x))
print("sigmoid, largest difference:", np.abs(F.deriv(F.sigmoid, x) - F.sigmoid_deriv(x)).max())

# %% [markdown]
# ## Chains of functions
#
# For `u₁ = f₁(x)`, `u₂ = f₂(u₁)`, `u₃ = f₃(u₂)`, the chain rule gives
# `du₃/dx = f₃'(u₂) · f₂'(u₁) · f₁'(x)`: walk forward computing each intermediate value, and multiply the
# local slopes. fdl's `chain_deriv` does exactly this for a chain of any length:

# %%
show(F.chain_deriv)

# %% [markdown]
# The same chain, differentiated by `jax.grad` (through the very same forward functions, which accept JAX
# arrays), agrees to rounding error:

# %%
links = [F.FUNCTIONS["leaky_relu"], F.FUNCTIONS["square"], F.FUNCTIONS["sigmoid"]]
composed = F.chain(*(link.f for link in links))
xs = jnp.linspace(-3.0, 3.0, 601)
by_hand = F.chain_deriv(links, xs)
by_jax = jax.vmap(jax.grad(composed))(xs)
print("largest |chain rule - jax.grad|:", float(jnp.max(jnp.abs(by_hand - by_jax))))

# %% [markdown]
# ## The same rule as an fdl op
#
# From chapter 3 on, every function is an *operation*: a plain forward plus a hand-written backward that
# turns the gradient arriving from above, `g`, into the gradient for the input. For the sigmoid the local
# slope is `s (1 - s)`, computed from the output the forward already produced:

# %%
show(fdl.ops.sigmoid.backward)

# %% [markdown]
# `fdl.testing.check_op` runs the op twice — once with this backward (a `jax.custom_vjp`), once letting
# `jax.grad` differentiate the plain forward — and compares the forwards, the two vector-Jacobian products
# for a random cotangent, and the hand-written one against finite differences. It raises on any mismatch,
# so a cell that finishes is a passed check.

# %%
x = jax.random.normal(jax.random.key(0), (4, 5), jnp.float64)
for op in (fdl.ops.sigmoid, fdl.ops.leaky_relu, fdl.ops.tanh):
    check_op(op, x)
    print(f"{op.name}: hand-written backward == jax.grad")

# %% [markdown]
# ## Functions of matrices
#
# With `N = X W`, `S = σ(N)` and `L = sum(S)`, every entry of `S` contributes with weight one, so
# `dL/dN = σ'(N)`; pushing that back through the matrix product gives `dL/dX = σ'(N) Wᵀ` and
# `dL/dW = Xᵀ σ'(N)`. The transposes are what make the shapes come out right: `dL/dX` must have the shape
# of `X`.

# %%
show(F.matmul_backward)

# %%
kx, kw = jax.random.split(jax.random.key(1))
X = jax.random.normal(kx, (4, 3), jnp.float64)
W = jax.random.normal(kw, (3, 2), jnp.float64)
dX, dW = F.matmul_backward(X, W)
jX, jW = jax.grad(F.matmul_forward, argnums=(0, 1))(X, W)
print("dL/dX: largest difference to jax.grad", float(jnp.max(jnp.abs(dX - jX))))
print("dL/dW: largest difference to jax.grad", float(jnp.max(jnp.abs(dW - jW))))

# %% [markdown]
# The book checks these gradients on draws from NumPy's legacy generator with fixed seeds. fdl reproduces
# its printed values:

# %%
ours = F.published_checks()
for name, published in book.CH01.items():
    print(f"{name:26s} book {published}  fdl {np.round(ours[name], 4).tolist()}")

# %% [markdown]
# ## Where fdl differs from the book
#
# Chapter 1's code has no erratum. One difference in method: the book takes `σ'(N)` in the matrix backward
# by the numerical derivative; fdl uses the exact `s (1 - s)`. The two differ by about `d²`:

# %%
N = X @ W
print("numerical vs exact sigmoid slope:", float(jnp.max(jnp.abs(F.deriv(F.sigmoid, N) - F.sigmoid_deriv(N)))))

# %% [markdown]
# ## Picture: the chains and their derivatives
#
# Chapter 1 trains nothing yet (training starts in chapter 2); its picture is each chain beside the derivative
# the chain rule gives for it.

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
for ax, names in zip(axes, [("square", "sigmoid"), ("leaky_relu", "square", "sigmoid")], strict=True):
    chain_links = [F.FUNCTIONS[n] for n in names]
    ax.plot(xs, F.chain(*(link.f for link in chain_links))(xs), label="chain")
    ax.plot(xs, F.chain_deriv(chain_links, xs), label="derivative (chain rule)")
    ax.set_title(" -> ".join(names))
    ax.set_xlabel("x")
    ax.legend()
plt.tight_layout()
plt.show()
