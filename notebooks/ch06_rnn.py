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
# # Chapter 6 — Recurrent networks: backpropagation through time
#
# A recurrent layer applies the same cell at every time step, feeding each step's hidden state into the next.
# Its gradient therefore has two paths into every step: from that step's output, and from the next step's
# hidden state. Backpropagation through time walks the steps in reverse, carrying the second path along. The
# chapter builds up to it from a scalar automatic differentiation, then writes the vanilla RNN, LSTM and GRU
# nodes with their backwards, and trains character-level language models on Shakespeare.
#
# This notebook checks every backward and looks at how far back the gradient reaches; the training runs (the
# book's seven configurations on Hamlet) are in the experiment script.
#
# Full experiment: [`experiments/ch06_rnn.py`](../experiments/ch06_rnn.py)
# (`python experiments/ch06_rnn.py --out runs/ch06`, about 10 minutes).

# %%
import inspect

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Code

import fdl
from fdl.chapters.autodiff import NumberWithGrad
from fdl.data import load_text
from fdl.data.text import Vocabulary
from fdl.recurrent import lstm_cell, rnn_layer, stack
from fdl.testing import check_vjp

jax.config.update("jax_enable_x64", True)


def show(obj):
    """Display the source of an fdl function (it is imported, not copied)."""
    return Code(inspect.getsource(obj), language="python")


# %% [markdown]
# ## A scalar that remembers how it was made
#
# The chapter's `NumberWithGrad` records, for every sum and product, which numbers it came from. Walking that
# record backwards applies the chain rule; a number used twice collects the gradient from both uses. The
# book's two checks: `c = 4a + 3` gives `dc/da = 4`, and `e = (4a + 3)(a + 2)` at `a = 3` gives
# `de/da = (a + 2)·4 + (4a + 3)·1 = 35`.

# %%
a = NumberWithGrad(3)
c = a * 4 + 3
c.backward()
print("dc/da =", a.grad)
a = NumberWithGrad(3)
e = (a * 4 + 3) * (a + 2)
e.backward()
print("de/da =", a.grad)

# %% [markdown]
# ## The LSTM node, forward and backward
#
# Per step, with `Z = [x, H]`: forget, input and output gates `f, i, o = σ(Z W + B)` (each its own weights),
# a candidate `C̃ = tanh(Z W_c + B_c)`, the new cell state `C' = f C + i C̃` and hidden state `H' = o tanh(C')`.
# The backward undoes these lines in reverse order; the cell state's gradient takes the short path
# `dC = f dC'`, which is why an LSTM's gradient survives more steps than a vanilla RNN's. fdl's node, written
# line for line beside the book's:

# %%
show(lstm_cell.node_backward)

# %% [markdown]
# ## Gradient checks: every cell against `jax.grad`
#
# A layer runs its cell over the sequence with `lax.scan`; `grad="manual"` differentiates it with the
# hand-written backpropagation through time (a reverse scan), `grad="autodiff"` lets `jax.grad` differentiate
# the forward scan. `check_vjp` compares both for a random cotangent, in every parameter and the input, and
# checks the manual one against finite differences.

# %%
x = jax.random.normal(jax.random.key(0), (3, 6, 5), jnp.float64)  # (batch, time, features)
for kind in ("rnn", "lstm", "gru"):
    layer = rnn_layer(8, 4, kind)
    params = layer.init(jax.random.key(1), (5,), jnp.float64)
    state = layer.zero_state(jnp.float64)

    def run(grad, layer=layer, state=state):
        return lambda p, x: layer.apply(p, x, state, grad=grad)[0]

    check_vjp(run("manual"), run("autodiff"), [params, x])
    print(f"{kind}: hand-written BPTT == jax.grad ({len(params)} parameters and the input)")

# %% [markdown]
# ## A hand-rolled check on real text
#
# Two stacked layers (a vanilla RNN, then an LSTM whose output is the vocabulary), on windows of Hamlet,
# scored by softmax cross-entropy at every step. We nudge single weights up and down by `1e-4` and compare
# the change in the loss with the hand-written gradient:

# %%
text = load_text("hamlet")
vocab = Vocabulary.from_text(text)
ids = vocab.encode(text[:2000])
T, batch = 12, 4
starts = np.arange(batch) * 100
x_ids = ids[starts[:, None] + np.arange(T)]
y_ids = ids[starts[:, None] + np.arange(T) + 1]
X = jax.nn.one_hot(x_ids, vocab.size, dtype=jnp.float64)
Y = jax.nn.one_hot(y_ids, vocab.size, dtype=jnp.float64)

model = stack(rnn_layer(16, 12, "rnn"), rnn_layer(16, vocab.size, "lstm"))
params = model.init(jax.random.key(2), (vocab.size,), jnp.float64)
states = model.zero_state(jnp.float64)


@jax.jit
def loss(params):
    logits, _ = model.apply(params, X, states, grad="manual")
    return fdl.softmax_cross_entropy(logits, Y, grad="manual")


grads = jax.jit(jax.grad(loss))(params)
hidden_row = vocab.size + 3  # W_f multiplies [x, H]: rows past the vocabulary act on H
for layer_index, name, index in [
    (0, "W_f", (hidden_row, 2)),
    (1, "W_o", (5, 7)),
    (1, "B_c", (0, 1)),
    (1, "W_v", (2, 9)),
]:

    def nudged(delta, layer_index=layer_index, name=name, index=index):
        p = jax.tree.map(lambda a: a, params)
        p[layer_index] = {**p[layer_index], name: p[layer_index][name].at[index].add(delta)}
        return float(loss(p))

    numeric = (nudged(1e-4) - nudged(-1e-4)) / 2e-4
    exact = float(grads[layer_index][name][index])
    print(
        f"layer {layer_index} {name}{index}: finite difference {numeric:+.6e}, hand-written {exact:+.6e}, "
        f"relative difference {abs(numeric - exact) / abs(exact):.1e}"
    )

# %% [markdown]
# ## Erratum 2: the book's GRU does not learn
#
# The book's GRU node computes its update gate from the reset gate's inputs, and its backward ignores the
# gradient of its own hidden state, so every GRU weight except the output projection gets exactly zero
# gradient. fdl's GRU follows the equations; here is the largest gradient of each of its weights:

# %%
gru_model = stack(rnn_layer(16, vocab.size, "gru"))
gru_params = gru_model.init(jax.random.key(3), (vocab.size,), jnp.float64)
gru_grads = jax.jit(
    jax.grad(lambda p: fdl.softmax_cross_entropy(gru_model.apply(p, X, gru_model.zero_state(jnp.float64))[0], Y))
)(gru_params)[0]
print({name: f"{float(jnp.max(jnp.abs(g))):.1e}" for name, g in gru_grads.items()})

# %% [markdown]
# ## Erratum 8: a reproducible vocabulary
#
# The book numbers the characters in the order of `list(set(text))`, which changes from one Python process
# to the next (string hashing is randomised), so a saved model cannot be reloaded against a new vocabulary.
# fdl sorts them:

# %%
print(vocab.size, "characters:", repr("".join(vocab.chars[:40])), "...")

# %% [markdown]
# ## How far back does the gradient reach?
#
# The gradient of the loss at the *last* step with respect to the input at each earlier step, for a vanilla
# RNN, an LSTM and a GRU of the same size (book initialisation, 40 steps). In the RNN it shrinks by a roughly
# constant factor per step; the LSTM's cell-state path and the GRU's update gate carry it further.

# %%
T_long = 40
x_long = jax.nn.one_hot(ids[None, :T_long], vocab.size, dtype=jnp.float64)
y_last = jax.nn.one_hot(ids[None, T_long], vocab.size, dtype=jnp.float64)
fig, ax = plt.subplots(figsize=(7, 3.5))
for kind in ("rnn", "lstm", "gru"):
    layer = rnn_layer(64, vocab.size, kind, weight_init="glorot")
    p = layer.init(jax.random.key(4), (vocab.size,), jnp.float64)

    def last_step_loss(x, layer=layer, p=p):
        y, _ = layer.apply(p, x, layer.zero_state(jnp.float64))
        return fdl.softmax_cross_entropy(y[:, -1], y_last)

    dx = jax.jit(jax.grad(last_step_loss))(x_long)[0]
    ax.semilogy(np.arange(T_long) - (T_long - 1), jnp.linalg.norm(dx, axis=-1), label=kind)
ax.set_xlabel("input step, relative to the last")
ax.set_ylabel("|d loss(last step) / d x_t|")
ax.legend()
plt.show()
