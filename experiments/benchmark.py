"""Benchmark: training-step time of the book's workloads, fdl (hand-written VJPs), fdl through jax.grad, PyTorch.

Workloads (float32; tracker issue 7):

    W1  MNIST MLP 784 -> dense(89, tanh) -> dense(10), softmax CE, SGD momentum 0.9 lr 0.1, batch 60
    W2  ch. 5 CNN: conv 1->32 5x5 tanh, flatten, dense(25088 -> 10), softmax CE, momentum 0.9 lr 0.01, batch 60
    W3  ch. 7 ConvNet: conv 1->16 5x5 tanh, conv 16->8 5x5 tanh, flatten, dense(6272 -> 32, tanh), dense(10),
        softmax CE, momentum 0.9 lr 0.01, batch 60
    W4  character LSTM (ch. 6): one-hot input (vocabulary 65), hidden 256, sequence 25, batch 32, projection to
        the vocabulary, softmax CE summed over every step (the book's), AdaGrad lr 0.01 after clipping to +/-2
    W5  Boston 13 -> dense(13, sigmoid) -> dense(13, sigmoid) -> dense(1), MSE, SGD lr 0.01, batch 32, 50 epochs

Implementations, all from the same initial weights (fdl's init, copied into PyTorch's layouts) and the same
batches in the same order:

    fdl          hand-written VJPs; a whole epoch is one compiled ``lax.scan``, the trainer's own
                 (``fdl.train.make_chunk`` with ``ShuffledEpochs``, as ``fit`` runs it; W4: ``Prebatched`` over
                 the unit's batches with ``fdl.recurrent.char_loss_fn``), data on the device
    fdl-autodiff the same model and scan, gradients by ``jax.grad`` of the plain forward
    fdl-step     reference: the hand-written step jitted alone, called once per batch from Python
    torch        PyTorch eager, ``torch.set_num_threads(os.cpu_count())``; on CUDA with ``--device gpu``
    torch-graphs (``--device gpu`` only) PyTorch with the whole training step captured as a CUDA graph
                 (``torch.cuda.graph``) and replayed per batch: the fastest thing a PyTorch user would pick for
                 small models, whose eager steps are bound by kernel launches. ``torch.compile(mode=
                 "reduce-overhead")`` builds the same graphs but compiles for tens of seconds per workload; on
                 the CPU neither applies, so this row is GPU-only.

Devices (``--device cpu|gpu``, default cpu). cpu: the workers run with ``JAX_PLATFORMS=cpu`` (any GPU is
ignored) and PyTorch on the CPU: the benchmark of the README's Performance section. gpu: jax's default device
(the GPU, where ``jax[cuda12]`` is installed; the workers set ``XLA_PYTHON_CLIENT_PREALLOCATE=false`` since
they share it) and PyTorch on ``cuda``; the run stops with a clear message if jax or torch sees no GPU.
Every implementation is synchronised before the clock stops (jax: ``block_until_ready``; PyTorch:
``torch.cuda.synchronize``). The parent writes all inputs with jax on the CPU, so both devices start from the
same numbers. ``--precision default`` (the default) keeps each backend's float32 product precision: TF32 on
Ampere and newer GPUs, and PyTorch set to the same (``set_float32_matmul_precision("high")``,
``cudnn.allow_tf32``); ``--precision highest`` runs full float32 in both (``JAX_DEFAULT_MATMUL_PRECISION``,
the setting of ``fdl.precision``). results.json records the device, the GPU's name as jax and torch report it,
and the precision.

Method. Each (workload, implementation) runs in its own worker process. Inputs, labels (synthetic for
W1-W3: standard-normal images labelled by a fixed random linear teacher; Boston for W5; Hamlet windows for W4),
initial weights and batch orders are written once by this process and read by every worker. A *unit* is one
epoch (W1-W3: ``--steps`` batches; W5: the 50 epochs of the whole training) or, for W4, ``--steps`` batches.
Unit 0 is the warm-up (it follows the compilation) and its losses are the cross-implementation check: every
implementation starts it from the same weights, so its final losses must agree. Then ``--repeats`` timed units
run, interleaved: repetition r runs every implementation once, in an order rotated by r, so machine noise is
shared. Reported: the median (and min/max) of the per-step time of the timed units (unit seconds / steps);
compile seconds (``jit(...).lower(...).compile()``, separate from the timing); and memory as the worker's peak
resident set (``getrusage`` maxrss: everything the process ever held, data included) and its growth above the
runtime baseline (maxrss after importing the framework and running one tiny op, before any data is loaded).

    python experiments/benchmark.py [--quick] [--workloads W1 W3] [--impls fdl torch] [--repeats N] [--out DIR]
                                    [--device cpu|gpu] [--precision default|highest]

Runs trained together (``--runs 1 3 10 30``; issue 22): instead of the implementations above, S runs of a
workload (default W1 and W3) trained as one program, as ``fdl.fit(..., seed=[...])`` trains them:
``fdl.train.make_chunk(step, ShuffledEpochs, runs=True)``, one ``jax.vmap``-ed step per batch over the S
stacked training states, each run with its own shuffle and keys, against one run trained alone
(``make_chunk`` as ``fit`` runs one seed; S serial runs cost S times its time). Reported per S: ms per
*run-step* (the S-run unit's time / steps / S; for the one run, its ms per step) and its ratio to the one run's
(below 1: S runs together are cheaper than S runs one after another). All runs start from the workload's
weights; run 0 draws the one run's shuffles, so its losses check the vmapped program (the others: key
``fold_in(key, r)``). Units interleave as above (each repetition runs the one run and every S once, rotated).
As in ``fit``, a workload with an XLA convolution on the CPU (W3's second layer) trains its S runs one after
another inside the program (``lax.map``) rather than ``vmap``-ed: XLA:CPU runs a convolution batched over its
weights many times slower. Written to ``runs.json`` and ``runs.md`` under ``--out``.

    python experiments/benchmark.py --runs 1 3 10 30 [--workloads W1 W3] [--quick] [--repeats N] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

IMPLS = ("fdl", "fdl-autodiff", "fdl-step", "torch", "torch-graphs")
LABELS = {"fdl": "fdl (hand-written VJPs, scanned epoch)", "fdl-autodiff": "fdl via jax.grad (scanned epoch)",
          "fdl-step": "fdl (hand-written, one jitted step per call)", "torch": "PyTorch eager",
          "torch-graphs": "PyTorch, whole step as a CUDA graph"}
# name -> layers (kind, units, activation), loss, optimizer (kind, lr), batch, steps per unit (full, quick), input
WORKLOADS = {
    "W1": dict(layers=[("dense", 89, "tanh"), ("dense", 10, None)], loss="ce", opt=("momentum", 0.1), batch=60,
               steps=(1000, 10), input=(784,), title="MNIST MLP 784-89-10"),
    "W2": dict(layers=[("conv", 32, "tanh"), ("flatten",), ("dense", 10, None)], loss="ce", opt=("momentum", 0.01),
               batch=60, steps=(300, 3), input=(1, 28, 28), title="ch. 5 CNN conv 1->32, dense 25088->10"),
    "W3": dict(layers=[("conv", 16, "tanh"), ("conv", 8, "tanh"), ("flatten",), ("dense", 32, "tanh"),
                       ("dense", 10, None)], loss="ce", opt=("momentum", 0.01), batch=60, steps=(300, 3),
               input=(1, 28, 28), title="ch. 7 ConvNet 1->16->8, 6272->32->10"),
    "W4": dict(loss="ce_sum", opt=("adagrad", 0.01), batch=32, steps=(300, 3), hidden=256, seq=25, vocab=65,
               title="char LSTM hidden 256, seq 25, vocab 65"),
    "W5": dict(layers=[("dense", 13, "sigmoid"), ("dense", 13, "sigmoid"), ("dense", 1, None)], loss="mse",
               opt=("sgd", 0.01), batch=32, epochs=(50, 2), input=(13,), title="Boston 13-13-13-1, 50 epochs"),
}
# manual/autodiff W4 0.8 and fdl/torch 1.0 (issue 7); autodiff/manual 1.2 and W1 fdl/torch 0.6 (issue 12)
TARGETS = {"manual/autodiff": {"W1": 1.0, "W4": 0.8},
           "autodiff/manual": {"W2": 1.2, "W3": 1.2},
           "fdl/torch": {"W1": 0.6, "W2": 1.0, "W3": 1.0, "W4": 1.0}}
SEED = 0


def reset_peak_rss() -> None:
    """Start the peak-RSS count afresh (Linux >= 4.0). A forked child inherits its parent's high-water mark
    (and ``execve`` keeps it), so without this every worker would report at least the parent's size."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss_mib() -> float:
    """The process's peak resident set (VmHWM, else ``getrusage`` maxrss), in MiB."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ------------------------------------------------------------------------------------------ shared inputs

def fdl_model(spec, conv_impl=None):
    """The fdl model, loss and optimizer of a workload; ``conv_impl`` is the conv2d layers' ``impl=`` (None: the
    layer's default)."""
    import optax

    from fdl import losses, optim
    from fdl.layers import dense, serial
    from fdl.layers.conv import conv2d
    if "layers" not in spec:
        from fdl.recurrent import rnn_layer, stack
        model = stack(rnn_layer(spec["hidden"], spec["vocab"], "lstm", weight_scale=0.01))  # the book's LSTM
        return model, None, optax.chain(optim.clip(2.0), optim.adagrad(spec["opt"][1]))
    layers, specs = [], spec["layers"]
    for i, (kind, *rest) in enumerate(specs):
        if kind == "conv":
            flat = i + 1 < len(specs) and specs[i + 1][0] == "flatten"
            layers.append(conv2d(rest[0], 5, rest[1], weight_init="glorot", flatten=flat,
                                 **({} if conv_impl is None else {"impl": conv_impl})))
        elif kind == "dense":
            layers.append(dense(rest[0], rest[1] or "linear", weight_init="glorot"))
    kind, lr = spec["opt"]
    tx = optim.momentum(lr, 0.9) if kind == "momentum" else optim.sgd(lr)
    loss = losses.softmax_cross_entropy if spec["loss"] == "ce" else losses.mean_squared_error
    return serial(*layers), loss, tx


def unit_shape(spec, quick: bool):
    """(epochs per unit, steps per epoch, examples per epoch)."""
    q = int(quick)
    if "epochs" in spec:
        return spec["epochs"][q], None, None  # W5: the Boston training set fixes the epoch
    return 1, spec["steps"][q], spec["steps"][q] * spec["batch"]


def write_inputs(name, spec, quick, units, path):
    """Initial weights, data and every unit's batch order, as one .npz all workers read."""
    import jax

    from fdl.data import boston_split, load_text
    from fdl.data.text import Vocabulary, random_batch
    model, _, _ = fdl_model(spec)
    key = jax.random.key(SEED)
    out = {}
    epochs, steps, n = unit_shape(spec, quick)
    if name == "W4":
        ids = Vocabulary.from_text(load_text("hamlet")).encode(load_text("hamlet"))
        params = model.init(key, (spec["vocab"],))
        pairs = [random_batch(ids, jax.random.fold_in(key, k), spec["batch"], spec["seq"])
                 for k in range(units * steps)]
        shape = (units, steps, spec["batch"], spec["seq"])
        out["xid"] = np.stack([p[0] for p in pairs]).reshape(shape).astype(np.int32)
        out["yid"] = np.stack([p[1] for p in pairs]).reshape(shape).astype(np.int32)
    else:
        if name == "W5":
            X, _, Y, _ = boston_split()
            X, Y = np.asarray(X, np.float32), np.asarray(Y, np.float32)
            n = len(X)
        else:
            rng = np.random.default_rng(SEED)
            X = rng.standard_normal((n, *spec["input"]), dtype=np.float32)
            teacher = rng.standard_normal((X[0].size, 10), dtype=np.float32)
            Y = np.eye(10, dtype=np.float32)[np.argmax(X.reshape(n, -1) @ teacher, axis=1)]
        params = model.init(key, X.shape[1:])
        out["X"], out["Y"] = X, Y
        perms = [jax.random.permutation(jax.random.split(epoch_key(u, e))[0], n)  # ShuffledEpochs' shuffle
                 for u in range(units) for e in range(epochs)]
        out["perm"] = np.stack([np.asarray(p) for p in perms]).reshape(units, epochs, n).astype(np.int64)
    for i, layer in enumerate(params):
        for k, v in layer.items():
            out[f"param{i}.{k}"] = np.asarray(v)
    np.savez(path, **out)


def epoch_key(unit: int, epoch: int):
    import jax
    return jax.random.fold_in(jax.random.fold_in(jax.random.key(SEED + 1), unit), epoch)


def load_params(data):
    layers: dict[int, dict] = {}
    for key in data.files:
        if key.startswith("param"):
            i, name = key[5:].split(".", 1)
            layers.setdefault(int(i), {})[name] = data[key]
    return [layers[i] for i in sorted(layers)]


# ------------------------------------------------------------------------------------------------ workers

class FdlRunner:
    """fdl's way of training, through the trainer's pieces (:mod:`fdl.train`): a unit is compiled
    ``make_chunk`` calls (the ``lax.scan`` that ``fit`` runs), or one jitted step per call (``impl="fdl-step"``)."""

    def __init__(self, name, spec, data, impl, quick, conv_impl=None):
        import jax
        import jax.numpy as jnp

        from fdl.train import Prebatched, ShuffledEpochs, TrainState, make_chunk, make_train_step, model_loss
        self.jax, self.impl = jax, impl
        grad = "autodiff" if impl == "fdl-autodiff" else "manual"
        model, loss, tx = fdl_model(spec, conv_impl)
        params = jax.tree.map(jnp.asarray, load_params(data))
        start = time.perf_counter()
        if name == "W4":
            from fdl.recurrent import char_loss_fn
            step = make_train_step(char_loss_fn(model, spec["vocab"], grad=grad, reduction="sum"), tx)
            self.state = TrainState(params, tx.init(params), model.zero_state())
            # every unit's batches already on the device, so indexing dispatches nothing
            self.data = [(jnp.asarray(x), jnp.asarray(y)) for x, y in zip(data["xid"], data["yid"], strict=True)]
            self.key, steps = jax.random.key(SEED), len(data["xid"][0])
            self.per_char = spec["batch"] * spec["seq"]  # the step's loss is the book's sum; report per character
            if impl == "fdl-step":
                self.run, self.batches = self._lstm_steps, [[(x[i], y[i]) for i in range(steps)] for x, y in self.data]
                self.step = jax.jit(step).lower(self.state, self.batches[0][0], self.key).compile()
            else:
                self.run = self._lstm_unit
                self.chunk = make_chunk(step, Prebatched()).lower(self.state, self.data[0], self.key, 0, 0,
                                                                  count=steps).compile()
        else:
            step = make_train_step(model_loss(model, loss, grad=grad), tx)
            self.state = TrainState(params, tx.init(params))
            self.data = (jnp.asarray(data["X"]), jnp.asarray(data["Y"]))
            n, batch = len(self.data[0]), spec["batch"]
            self.perm, self.batch = data["perm"], batch
            self.keys = [jax.random.fold_in(jax.random.key(SEED + 1), u) for u in range(self.perm.shape[0])]
            self.sync_each_epoch = name == "W5"  # fit reads each epoch's losses
            if impl == "fdl-step":
                jstep, self.run = jax.jit(step), self._steps
                self.steps = {b: jstep.lower(self.state, (self.data[0][:b], self.data[1][:b]),
                                             self.keys[0]).compile() for b in {batch, n % batch} - {0}}
                self.perm_dev = [[jnp.asarray(p) for p in unit] for unit in self.perm]
            else:
                sampler = ShuffledEpochs(n, batch)
                self.count, self.ragged = sampler.full_steps, sampler.ragged
                self.chunk = make_chunk(step, sampler).lower(self.state, self.data, self.keys[0], 0, 0,
                                                             count=self.count, ragged=self.ragged).compile()
                self.run = self._epochs
        self.compile_s = time.perf_counter() - start

    def _epochs(self, u):
        out = []
        for e in range(self.perm.shape[1]):  # the epoch key is fold_in(unit key, e), as write_inputs shuffled
            self.state, losses, _ = self.chunk(self.state, self.data, self.keys[u], e, 0)
            out.append(np.asarray(losses) if self.sync_each_epoch else losses)
        self.jax.block_until_ready((self.state, out))
        return out

    def _steps(self, u):
        import jax.numpy as jnp
        out = []
        for e, perm in enumerate(self.perm_dev[u]):
            X, Y = (jnp.take(a, perm, axis=0) for a in self.data)
            key = self.jax.random.fold_in(self.keys[u], e)
            for i in range(0, len(X), self.batch):
                xb, yb = X[i:i + self.batch], Y[i:i + self.batch]
                self.state, value = self.steps[len(xb)](self.state, (xb, yb), key)
                out.append(value)
        self.jax.block_until_ready((self.state, out))
        return out

    def _lstm_unit(self, u):
        self.state, losses, _ = self.chunk(self.state, self.data[u], self.key, 0, 0)
        return [np.asarray(self.jax.block_until_ready(losses)) / self.per_char]

    def _lstm_steps(self, u):
        out = []
        for batch in self.batches[u]:
            self.state, loss = self.step(self.state, batch, self.key)
            out.append(loss)
        self.jax.block_until_ready((self.state, out))
        return [np.asarray(out) / self.per_char]


class FdlRunsRunner:
    """``--runs``: S runs of a dense or conv workload trained together (``make_chunk(..., runs=True)``: the step
    ``jax.vmap``-ed over S stacked states, each batch gathered inside the step), for each S in ``sizes``, and
    one run alone (``make_chunk`` as ``fit`` runs one seed; size 0 here). Every state starts from the workload's
    weights and carries over from unit to unit; run 0 of each S uses the one run's key (so at unit 0 its losses
    are the one run's, up to XLA's order of summation), run r > 0 ``fold_in(key, r)``."""

    def __init__(self, name, spec, data, sizes, quick, conv_impl=None):
        import jax
        import jax.numpy as jnp

        from fdl.train import ShuffledEpochs, TrainState, make_chunk, make_train_step, model_loss
        if "layers" not in spec:
            raise ValueError(f"--runs times the dense and conv workloads, not {name}")
        self.jax = jax
        model, loss, tx = fdl_model(spec, conv_impl)
        params = jax.tree.map(jnp.asarray, load_params(data))
        step = make_train_step(model_loss(model, loss), tx)
        self.data = (jnp.asarray(data["X"]), jnp.asarray(data["Y"]))
        sampler = ShuffledEpochs(len(self.data[0]), spec["batch"])
        units, self.epochs = data["perm"].shape[:2]
        unit_keys = [jax.random.fold_in(jax.random.key(SEED + 1), u) for u in range(units)]
        one = TrainState(params, tx.init(params))
        shape = dict(count=sampler.full_steps, ragged=sampler.ragged)
        self.states, self.keys, self.active, self.chunks, self.compile_s = {0: one}, {0: unit_keys}, {}, {}, {}
        start = time.perf_counter()
        self.chunks[0] = make_chunk(step, sampler).lower(one, self.data, unit_keys[0], 0, 0, **shape).compile()
        self.compile_s[0] = time.perf_counter() - start
        from fdl.train.fit import _convolves_on_cpu  # fit's own choice: runs one by one for XLA convs on the CPU
        self.vectorized = not _convolves_on_cpu(model, self.data[0].shape[1:], self.data[0].dtype)
        many = make_chunk(step, sampler, runs=True, vectorize=self.vectorized)
        for S in sizes:
            self.states[S] = jax.tree.map(lambda a, S=S: jnp.broadcast_to(a, (S, *jnp.shape(a))), one)
            self.keys[S] = [jnp.stack([k] + [jax.random.fold_in(k, r) for r in range(1, S)]) for k in unit_keys]
            self.active[S] = jnp.ones(S, bool)
            start = time.perf_counter()
            self.chunks[S] = many.lower(self.states[S], self.data, self.keys[S][0], 0, 0, self.active[S],
                                        **shape).compile()
            self.compile_s[S] = time.perf_counter() - start

    def run(self, u, size):
        out = []
        for e in range(self.epochs):  # the epoch key is fold_in(unit key, e), as write_inputs shuffled
            args = (self.states[size], self.data, self.keys[size][u], e, 0) + ((self.active[size],) if size else ())
            self.states[size], losses, _ = self.chunks[size](*args)
            out.append(losses[0] if size else losses)  # run 0's losses: steps per run
        self.jax.block_until_ready((self.states[size], out))
        return out


class TorchRunner:
    """The same model in PyTorch, weights copied from fdl's (dense W (in, out) -> (out, in); conv kernel
    (in, out, k, k) -> (out, in, k, k); LSTM gates f, i, c, o of W (in + hidden, hidden) -> torch's i, f, g, o).

    ``impl="torch"``: eager, on the CPU or (``device="gpu"``) on CUDA. ``impl="torch-graphs"`` (CUDA only): the
    whole training step (forward, backward, optimizer update, the LSTM's carried start state) captured once per
    batch shape as a CUDA graph (``torch.cuda.graph``, PyTorch's "whole network capture") and replayed each step
    after copying the batch into the graph's input tensors. The capture's warm-up steps change the weights, so
    the weights, optimizer state and start state are restored afterwards: every implementation starts unit 0
    from the same point. A unit ends with ``torch.cuda.synchronize()`` before the clock stops."""

    def __init__(self, name, spec, data, impl, quick, device="cpu"):
        import torch
        import torch.nn.functional as F
        self.torch, self.F, self.spec, self.compile_s = torch, F, spec, None
        self.cuda = device == "gpu"
        dev = self.dev = torch.device("cuda" if self.cuda else "cpu")
        t = lambda a: torch.tensor(np.ascontiguousarray(a), device=dev)  # noqa: E731
        params = load_params(data)
        if name == "W4":
            h, v = spec["hidden"], spec["vocab"]
            p = params[0]
            gates = ("i", "f", "c", "o")
            self.lstm = torch.nn.LSTM(v, h, batch_first=True).to(dev)
            with torch.no_grad():
                self.lstm.weight_ih_l0.copy_(t(np.concatenate([p[f"W_{g}"][:v] for g in gates], 1).T))
                self.lstm.weight_hh_l0.copy_(t(np.concatenate([p[f"W_{g}"][v:] for g in gates], 1).T))
                self.lstm.bias_ih_l0.copy_(t(np.concatenate([p[f"B_{g}"] for g in gates], 1)[0]))
                self.lstm.bias_hh_l0.zero_()
            self.lstm.bias_hh_l0.requires_grad_(False)  # fdl has one bias per gate
            self.Wv, self.Bv = t(p["W_v"].T).requires_grad_(), t(p["B_v"][0]).requires_grad_()
            self.params = [*(q for q in self.lstm.parameters() if q.requires_grad), self.Wv, self.Bv]
            self.sums = [torch.zeros_like(q) for q in self.params]
            self.state = (torch.zeros(1, h, device=dev), torch.zeros(1, h, device=dev))  # updated in place
            self.eye = torch.eye(v, device=dev)  # one-hot by indexing: no host check, capturable
            xid, yid = torch.from_numpy(data["xid"]).long().to(dev), torch.from_numpy(data["yid"]).long().to(dev)
            self.batches = lambda u: zip(xid[u], yid[u], strict=True)
            self.step = self._lstm_step
        else:
            self.layers, self.params, i = [], [], 0
            for kind, *rest in spec["layers"]:
                if kind == "flatten":
                    self.layers.append(("flatten", None, None, None))
                    continue
                p = params[i]
                i += 1
                W = t(np.transpose(p["W"], (1, 0, 2, 3)) if kind == "conv" else p["W"].T).requires_grad_()
                B = t(p["B"][0]).requires_grad_() if "B" in p else None
                self.params += [W] + ([B] if B is not None else [])
                self.layers.append((kind, W, B, rest[1]))
            kind, lr = spec["opt"]
            self.opt = torch.optim.SGD(self.params, lr=lr, momentum=0.9 if kind == "momentum" else 0.0)
            self.X, self.Y = torch.from_numpy(data["X"]).to(dev), torch.from_numpy(data["Y"]).to(dev)
            self.targets = self.Y.argmax(1) if spec["loss"] == "ce" else self.Y
            self.perm = torch.from_numpy(data["perm"]).to(dev)
            self.batches = self._dense_batches
            self.step = self._dense_step
        self.graphs = None
        if impl == "torch-graphs":
            start = time.perf_counter()
            self._capture()
            self.compile_s = time.perf_counter() - start  # warm-up and capture: this runner's "compilation"

    def forward(self, x):
        F, torch = self.F, self.torch
        for kind, W, B, act in self.layers:
            if kind == "flatten":
                x = x.flatten(1)
                continue
            x = F.conv2d(x, W, padding=W.shape[-1] // 2) if kind == "conv" else F.linear(x, W, B)
            x = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, None: lambda a: a}[act](x)
        return x

    def _dense_batches(self, u):
        b = self.spec["batch"]
        for perm in self.perm[u]:
            X, target = self.X[perm], self.targets[perm]
            for i in range(0, len(X), b):
                yield X[i:i + b], target[i:i + b]

    def _dense_step(self, x, target):
        self.opt.zero_grad(set_to_none=True)
        z = self.forward(x)
        if self.spec["loss"] == "ce":
            loss = self.F.cross_entropy(z, target)
        else:
            loss = ((z - target) ** 2).sum() / len(z)
        loss.backward()
        self.opt.step()
        return loss.detach()

    def _lstm_step(self, x_ids, y_ids):
        torch, F, v = self.torch, self.F, self.spec["vocab"]
        lr, eps, batch = self.spec["opt"][1], 1e-7, len(x_ids)
        for q in self.params:
            q.grad = None
        h0, c0 = (s.expand(batch, -1)[None].contiguous() for s in self.state)
        hs, (h, c) = self.lstm(self.eye[x_ids], (h0, c0))
        loss = F.cross_entropy(F.linear(hs, self.Wv, self.Bv).reshape(-1, v), y_ids.reshape(-1), reduction="sum")
        loss.backward()
        grads = [q.grad for q in self.params]
        with torch.no_grad():  # the book's clipping, then the book's AdaGrad: s += eps + g^2; p -= lr g / sqrt(s)
            torch._foreach_clamp_min_(grads, -2.0)
            torch._foreach_clamp_max_(grads, 2.0)
            torch._foreach_addcmul_(self.sums, grads, grads)
            torch._foreach_add_(self.sums, eps)
            torch._foreach_addcdiv_(self.params, grads, torch._foreach_sqrt(self.sums), value=-lr)
            self.state[0].copy_(h[0].mean(0, keepdim=True))  # the next batch starts from the mean state
            self.state[1].copy_(c[0].mean(0, keepdim=True))
        return loss.detach() / y_ids.numel()

    def _mutable(self):
        """Every tensor a step changes: weights, optimizer state, the LSTM's start state."""
        if hasattr(self, "opt"):
            return self.params + [b for s in self.opt.state.values() for b in s.values() if self.torch.is_tensor(b)]
        return self.params + self.sums + list(self.state)

    def _capture(self):
        """Capture one CUDA graph per batch shape (PyTorch's whole-network capture recipe), then restore."""
        torch = self.torch
        if not self.cuda:
            raise ValueError("torch-graphs needs a CUDA device (--device gpu)")
        examples = {}
        for x, target in self.batches(0):
            examples.setdefault(tuple(x.shape), (x.clone(), target.clone()))
        saved = [q.detach().clone() for q in self._mutable()]
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):  # warm-up on a side stream, as the recipe asks (creates optimizer state)
            for _ in range(3):
                for x, target in examples.values():
                    self.step(x, target)
        torch.cuda.current_stream().wait_stream(stream)
        momentum = self._mutable()[len(saved):]  # SGD's momentum buffers, absent before warm-up
        self.graphs = {}
        for shape, (x, target) in examples.items():
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                loss = self.step(x, target)
            self.graphs[shape] = (graph, x, target, loss)
        with torch.no_grad():
            for q, s in zip(self._mutable()[:len(saved)], saved, strict=True):
                q.copy_(s)
            for b in momentum:  # a zero buffer makes the first update equal to PyTorch's first step (buf = g)
                b.zero_()
        torch.cuda.synchronize()

    def run(self, u):
        torch, out = self.torch, []
        for x, target in self.batches(u):
            if self.graphs is None:
                out.append(self.step(x, target))
            else:
                graph, sx, st, loss = self.graphs[tuple(x.shape)]
                sx.copy_(x)
                st.copy_(target)
                graph.replay()
                out.append(loss.clone())
        if self.cuda:
            torch.cuda.synchronize()
        return [torch.stack(out).cpu().numpy()]


def worker(impl: str, device: str = "cpu", precision: str = "default") -> None:
    """Serve one implementation: for each workload the parent names, build and compile, run the units it asks
    for, and report the peak memory since that workload's setup. fdl's device and precision come from the
    environment the parent set (``JAX_PLATFORMS``, ``JAX_DEFAULT_MATMUL_PRECISION``); PyTorch's are set here."""
    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything else printed goes to stderr, the protocol owns the real stdout
    if impl.startswith("torch"):
        import torch
        torch.set_num_threads(os.cpu_count())
        dev = "cuda" if device == "gpu" else "cpu"
        if dev == "cuda":  # the same float32 arithmetic as jax: TF32 on Ampere+ ("default"), or full float32
            torch.set_float32_matmul_precision("high" if precision == "default" else "highest")
            torch.backends.cudnn.allow_tf32 = precision == "default"
        float((torch.ones(2, device=dev) @ torch.ones(2, device=dev)).item())  # start the runtime (and CUDA)
    else:
        import jax.numpy as jnp

        import fdl  # noqa: F401
        float(jnp.ones(2) @ jnp.ones(2))
    runner = None
    for line in sys.stdin:
        cmd = json.loads(line)
        if "setup" in cmd:
            runner = None
            reset_peak_rss()
            base = peak_rss_mib()
            args = (cmd["setup"], WORKLOADS[cmd["setup"]], np.load(cmd["path"]), impl, cmd["quick"])
            if "runs" in cmd:  # --runs
                runner = FdlRunsRunner(*args[:3], cmd["runs"], cmd["quick"], cmd.get("conv_impl"))
            else:
                runner = (TorchRunner(*args, device=device) if impl.startswith("torch")
                          else FdlRunner(*args, conv_impl=cmd.get("conv_impl")))
            reply = {"compile_s": runner.compile_s, "runtime_rss_mib": base}
        elif "unit" in cmd:
            start = time.perf_counter()
            losses = runner.run(cmd["unit"], *([cmd["size"]] if "size" in cmd else []))
            seconds = time.perf_counter() - start
            losses = np.concatenate([np.ravel(np.asarray(a)) for a in losses]).astype(float)
            reply = {"seconds": seconds, "steps": len(losses), "final_loss": losses[-1], "mean_loss": losses.mean()}
        else:
            reply = {"peak_rss_mib": peak_rss_mib()}
        proto.write(json.dumps(reply) + "\n")
        proto.flush()


# ------------------------------------------------------------------------------------------------- parent

def worker_env(device: str, precision: str, base=None) -> dict:
    """The workers' environment: ``--device cpu`` hides every accelerator from jax (``JAX_PLATFORMS=cpu``);
    ``--device gpu`` lets jax pick its default (the GPU, where ``jax[cuda12]`` is installed) without
    preallocating 75 % of its memory, since several workers share it; ``--precision highest`` sets jax's
    float32 matmul precision (what ``fdl.precision.set_matmul_precision`` sets)."""
    env = dict(os.environ if base is None else base)
    if device == "cpu":
        env["JAX_PLATFORMS"] = "cpu"
    else:
        if env.get("JAX_PLATFORMS") == "cpu":
            del env["JAX_PLATFORMS"]
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    if precision == "highest":
        env["JAX_DEFAULT_MATMUL_PRECISION"] = "highest"
    return env


class Worker:
    """A worker process for one implementation, spoken to in JSON lines."""

    def __init__(self, impl, device="cpu", precision="default", env=None):
        self.impl = impl
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", impl, "--device", device,
               "--precision", precision]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=worker_env(device, precision, env))

    def ask(self, **cmd):
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            raise RuntimeError(f"benchmark worker {self.impl} failed (exit {self.proc.returncode}); see stderr")
        return json.loads(line)

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def run_workload(name, workers, repeats, quick, tmp, log, conv_impl=None):
    """Warm-up and timed units of one workload on every worker; interleaved, each in a rotated order."""
    spec, impls, started = WORKLOADS[name], list(workers), time.perf_counter()
    path = Path(tmp) / f"{name}.npz"
    write_inputs(name, spec, quick, 1 + repeats, path)
    setup = {impl: workers[impl].ask(setup=name, path=str(path), quick=quick, conv_impl=conv_impl)  # one at a time
             for impl in impls}
    check = {impl: workers[impl].ask(unit=0) for impl in impls}  # the warm-up, from the same start for all
    times = {impl: [] for impl in impls}
    for r in range(repeats):
        for impl in impls[r % len(impls):] + impls[:r % len(impls)]:
            reply = workers[impl].ask(unit=1 + r)
            times[impl].append(1000.0 * reply["seconds"] / reply["steps"])
    peak = {impl: workers[impl].ask(finish=True)["peak_rss_mib"] for impl in impls}
    rows = {}
    for impl in impls:
        t = times[impl]
        rows[impl] = {"ms_per_step": statistics.median(t), "min_ms": min(t), "max_ms": max(t), "all_ms": t,
                      "steps_per_unit": check[impl]["steps"], "compile_s": setup[impl]["compile_s"],
                      "runtime_rss_mib": setup[impl]["runtime_rss_mib"], "peak_rss_mib": peak[impl],
                      "final_loss": check[impl]["final_loss"], "mean_loss": check[impl]["mean_loss"]}
    def spread(key):  # the largest difference between implementations, relative to the smallest value
        values = [r[key] for r in rows.values()]
        return (max(values) - min(values)) / max(abs(min(values)), 1e-12)

    log(f"{name} ({spec['title']}): " + ", ".join(f"{i} {r['ms_per_step']:.3f} ms" for i, r in rows.items())
        + "; final losses " + ", ".join(f"{i} {r['final_loss']:.6g}" for i, r in rows.items())
        + f" (max relative difference {spread('final_loss'):.1e}; of the warm-up unit's mean loss "
        f"{spread('mean_loss'):.1e}); {time.perf_counter() - started:.0f} s")
    return {"title": spec["title"], "implementations": rows,
            "loss_check": {"max_rel_diff": spread("final_loss"), "mean_max_rel_diff": spread("mean_loss")},
            "ratios": ratios(name, rows)}


def ratios(name, rows):
    out = {}
    for key, (a, b) in (("manual/autodiff", ("fdl", "fdl-autodiff")), ("autodiff/manual", ("fdl-autodiff", "fdl")),
                        ("fdl/torch", ("fdl", "torch")), ("fdl/torch-graphs", ("fdl", "torch-graphs")),
                        ("fdl-step/torch", ("fdl-step", "torch"))):
        if a in rows and b in rows:
            target = TARGETS.get(key, {}).get(name)
            value = rows[a]["ms_per_step"] / rows[b]["ms_per_step"]
            out[key] = {"value": value, "target": target, "met": None if target is None else value <= target}
    return out


PROBE = """
import json, sys
out = {}
try:
    import jax
    d = jax.devices()
    out["jax"] = {"platform": d[0].platform, "device_kind": d[0].device_kind, "count": len(d),
                  "version": jax.__version__}
except Exception as e:  # a broken CUDA install: say so instead of failing here
    out["jax"] = {"platform": None, "error": f"{type(e).__name__}: {e}"}
if "torch" in sys.argv[1:]:
    try:
        import torch
        ok = torch.cuda.is_available()
        out["torch"] = {"version": torch.__version__, "cuda": torch.version.cuda, "available": ok,
                        "name": torch.cuda.get_device_name(0) if ok else None}
    except ImportError:
        out["torch"] = None
print(json.dumps(out))
"""


def probe_gpu(with_torch: bool, env=None) -> dict:
    """What jax (and torch) see with the GPU workers' environment, from a short subprocess (so that this process,
    which writes the inputs on the CPU, never starts CUDA): ``{"jax": {"platform", "device_kind", "count",
    "version"}, "torch": {"version", "cuda", "available", "name"} or None}``."""
    cmd = [sys.executable, "-c", PROBE] + (["torch"] if with_torch else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, env=worker_env("gpu", "default", env), timeout=300)
    if proc.returncode != 0:
        return {"jax": {"platform": None, "error": proc.stderr.strip()[-500:]}, "torch": None}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def gpu_error(probe: dict, impls) -> str | None:
    """Why ``--device gpu`` cannot run these implementations on what :func:`probe_gpu` saw, or None."""
    jx = probe.get("jax") or {}
    if jx.get("platform") not in ("gpu", "cuda", "rocm"):
        seen = jx.get("error") or f"jax.devices() gives {jx.get('platform')} devices ({jx.get('device_kind')})"
        return (f"no GPU visible to jax/torch: {seen}. Install jax with CUDA (pip install -U 'jax[cuda12]', on a "
                "machine with an NVIDIA GPU and driver), or run with --device cpu")
    th = probe.get("torch", None)
    if any(i.startswith("torch") for i in impls) and not (th and th.get("available")):
        seen = "torch is not installed" if not th else f"torch {th['version']} (CUDA {th['cuda']}) sees no GPU"
        return (f"no GPU visible to torch: {seen}. Install a CUDA build of PyTorch (pip install torch; see "
                "pytorch.org), or leave PyTorch out with --impls fdl fdl-autodiff fdl-step")
    return None


def machine(device: str = "cpu", probe: dict | None = None):
    """The host (CPU model, cores, versions) and the device the workers ran on: ``device`` "cpu" or "gpu", and
    for a GPU its name as jax (``device_kind``) and torch (``get_device_name``) report it."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    versions = {}
    for mod in ("jax", "jaxlib", "numpy", "torch"):
        try:
            versions[mod] = __import__(mod).__version__
        except ImportError:
            versions[mod] = None
    info = {"cpu": model, "cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            **versions, "device": device}
    if device == "gpu" and probe:
        jx, th = probe.get("jax") or {}, probe.get("torch") or {}
        info["gpu"] = {"jax_device_kind": jx.get("device_kind"), "jax_device_count": jx.get("count"),
                       "jax_platform": jx.get("platform"), "torch_device_name": th.get("name"),
                       "torch_cuda": th.get("cuda")}
    return info


def table(results) -> str:
    lines = ["| workload | implementation | ms/step (median) | min-max | compile s | peak RSS MiB | "
             "above runtime MiB | final loss |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, w in results["workloads"].items():
        for impl, r in w["implementations"].items():
            comp = "-" if r["compile_s"] is None else f"{r['compile_s']:.2f}"
            lines.append(f"| {name} | {LABELS[impl]} | {r['ms_per_step']:.3f} | {r['min_ms']:.3f}-{r['max_ms']:.3f} "
                         f"| {comp} | {r['peak_rss_mib']:.0f} | {r['peak_rss_mib'] - r['runtime_rss_mib']:.0f} "
                         f"| {r['final_loss']:.5g} |")
    lines += ["", "| workload | ratio | measured | target | met |", "|---|---|---:|---:|---|"]
    for name, w in results["workloads"].items():
        for key, r in w["ratios"].items():
            target = "-" if r["target"] is None else f"<= {r['target']:.1f}"
            met = "-" if r["met"] is None else ("yes" if r["met"] else "no")
            lines.append(f"| {name} | {key} | {r['value']:.2f} | {target} | {met} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Training-step benchmark: fdl, fdl via jax.grad, PyTorch "
                                     "(eager; on a GPU also with CUDA graphs)")
    parser.add_argument("--quick", action="store_true", help="a few steps per unit: a smoke run")
    parser.add_argument("--workloads", nargs="+", choices=list(WORKLOADS), default=None,
                        help="default: all (with --runs: W1 W3)")
    parser.add_argument("--impls", nargs="+", choices=IMPLS, default=None,
                        help="default: all (torch-graphs only with --device gpu)")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                        help="where fdl and PyTorch run (default cpu, even where a GPU is present); gpu needs jax "
                             "with CUDA (jax[cuda12]) and, for the PyTorch rows, a CUDA build of torch")
    parser.add_argument("--precision", choices=("default", "highest"), default="default",
                        help="float32 products and convolutions: 'default' is each backend's (TF32 on Ampere+ GPUs, "
                             "set alike for PyTorch), 'highest' full float32 in both; no effect on the CPU")
    parser.add_argument("--repeats", type=int, default=None, help="timed units per implementation (default 5, quick 3)")
    parser.add_argument("--out", type=Path, default=None, help="directory for results.json and table.md")
    parser.add_argument("--shared-workers", action=argparse.BooleanOptionalAction, default=None,
                        help="one worker process per implementation for all workloads (default with --quick) "
                             "instead of a fresh one per workload and implementation")
    parser.add_argument("--conv-impl", choices=("xla", "slices", "auto", "im2col"), default=None,
                        help="the fdl rows' convolution, the conv2d layer's impl= (default: the layer's own)")
    parser.add_argument("--runs", nargs="+", type=int, default=None, metavar="S",
                        help="instead of the implementations: time S runs of each workload trained together as one "
                             "vmapped program (fdl.train.make_chunk(..., runs=True), as fit(seed=[...]) trains "
                             "them) against one run alone, in ms per run-step, e.g. --runs 1 3 10 30 (dense and "
                             "conv workloads; default W1 W3); writes runs.json and runs.md")
    parser.add_argument("--worker", choices=IMPLS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.runs is not None and (min(args.runs) < 1 or "W4" in (args.workloads or ())):
        parser.error("--runs takes run counts of at least 1, for the dense and conv workloads (not W4)")
    args.workloads = args.workloads or (["W1", "W3"] if args.runs else list(WORKLOADS))
    if args.worker:
        return worker(args.worker, args.device, args.precision)
    repeats = args.repeats or (3 if args.quick else 5)
    if repeats < 1:
        parser.error("--repeats must be at least 1")
    impls = list(args.impls or (IMPLS if args.device == "gpu" else [i for i in IMPLS if i != "torch-graphs"]))
    if args.runs:
        impls = ["fdl"]  # --runs times fdl alone
    if args.device == "cpu" and "torch-graphs" in impls:
        parser.error("torch-graphs captures CUDA graphs and needs --device gpu; on the CPU PyTorch runs eager "
                     "(--impls torch)")
    probe = None
    if args.device == "gpu":
        probe = probe_gpu(any(i.startswith("torch") for i in impls))
        error = gpu_error(probe, impls)
        if error:
            parser.error(error)
    elif "torch" in impls and __import__("importlib").util.find_spec("torch") is None:
        print("torch is not installed (pip install -e '.[bench]'); benchmarking without it")
        impls.remove("torch")
    # This process writes every worker's inputs (weights, data, batch orders) with jax on the CPU, whatever the
    # device, so that they are the same numbers on every machine; the workers get the caller's environment.
    base_env = dict(os.environ)
    if "jax" not in sys.modules:
        os.environ["JAX_PLATFORMS"] = "cpu"
    try:
        return _run(args, impls, repeats, probe, base_env)
    finally:
        os.environ.clear()
        os.environ.update(base_env)


def _run(args, impls, repeats, probe, base_env):
    if args.runs:
        return run_runs(args, repeats, probe, base_env)
    results = {"machine": machine(args.device, probe), "device": args.device, "precision": args.precision,
               "load_start": os.getloadavg(), "repeats": repeats, "quick": args.quick, "conv_impl": args.conv_impl,
               "workloads": {}}
    gpu = results["machine"].get("gpu")
    where = f"; GPU {gpu['jax_device_kind']} (torch: {gpu['torch_device_name']})" if gpu else "; CPU only"
    print(f"{results['machine']['cpu']}, {results['machine']['cores']} cores{where}; float32 precision "
          f"{args.precision}; load average {results['load_start'][0]:.2f}; {repeats} interleaved repetitions "
          "after a warm-up")
    shared = args.quick if args.shared_workers is None else args.shared_workers
    results["shared_workers"] = shared
    workers = {}
    try:
        with tempfile.TemporaryDirectory(prefix="fdl-bench-") as tmp:
            for name in args.workloads:
                if not shared or not workers:
                    workers = {impl: Worker(impl, args.device, args.precision, base_env) for impl in impls}
                results["workloads"][name] = run_workload(name, workers, repeats, args.quick, tmp, print,
                                                          args.conv_impl)
                if not shared:
                    for w in workers.values():
                        w.close()
    finally:
        for w in workers.values():
            w.close()
    results["load_end"] = os.getloadavg()
    text = table(results)
    load = ", ".join(f"{x:.2f}" for x in results["load_end"])
    print(f"\n{text}\n\nload average (1, 5, 15 min) at the end: {load}")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(results, indent=2))
        (args.out / "table.md").write_text(text + "\n")
        print(f"wrote {args.out / 'results.json'} and {args.out / 'table.md'}")
    return results


def run_runs(args, repeats, probe, base_env):
    """``--runs``: for each workload, one worker times one run alone and S runs together for each S, interleaved
    as :func:`run_workload` interleaves implementations; ``{"workloads": {name: {"sizes": {S: row}}}}``."""
    sizes = sorted(set(args.runs))
    results = {"machine": machine(args.device, probe), "device": args.device, "precision": args.precision,
               "load_start": os.getloadavg(), "repeats": repeats, "quick": args.quick, "runs": sizes,
               "conv_impl": args.conv_impl, "workloads": {}}
    print(f"{results['machine']['cpu']}, {results['machine']['cores']} cores, device {args.device}; load average "
          f"{results['load_start'][0]:.2f}; S = {sizes} runs together against one run alone; {repeats} "
          "interleaved repetitions after a warm-up")
    with tempfile.TemporaryDirectory(prefix="fdl-bench-") as tmp:
        for name in args.workloads:
            spec, started = WORKLOADS[name], time.perf_counter()
            path = Path(tmp) / f"{name}.npz"
            write_inputs(name, spec, args.quick, 1 + repeats, path)
            worker = Worker("fdl", args.device, args.precision, base_env)
            try:
                setup = worker.ask(setup=name, path=str(path), quick=args.quick, runs=sizes,
                                   conv_impl=args.conv_impl)
                kinds = [0] + sizes  # 0: one run alone
                check = {S: worker.ask(unit=0, size=S) for S in kinds}
                times = {S: [] for S in kinds}
                for r in range(repeats):
                    for S in kinds[r % len(kinds):] + kinds[:r % len(kinds)]:
                        reply = worker.ask(unit=1 + r, size=S)
                        times[S].append(1000.0 * reply["seconds"] / reply["steps"] / max(S, 1))
                peak = worker.ask(finish=True)["peak_rss_mib"]
            finally:
                worker.close()
            alone = statistics.median(times[0])
            rows = {}
            for S in kinds:
                t = times[S]
                rows["alone" if S == 0 else str(S)] = {
                    "runs": max(S, 1), "ms_per_run_step": statistics.median(t), "min_ms": min(t), "max_ms": max(t),
                    "all_ms": t, "vs_alone": statistics.median(t) / alone, "compile_s": setup["compile_s"][str(S)],
                    "steps_per_unit": check[S]["steps"], "final_loss_run0": check[S]["final_loss"],
                    "rel_diff_run0": abs(check[S]["final_loss"] - check[0]["final_loss"]) /
                    max(abs(check[0]["final_loss"]), 1e-12)}
            results["workloads"][name] = {"title": spec["title"], "sizes": rows, "peak_rss_mib": peak}
            print(f"{name} ({spec['title']}): one run {alone:.3f} ms/step; " + ", ".join(
                f"S={r['runs']} {r['ms_per_run_step']:.3f} ms/run-step ({r['vs_alone']:.2f}x)"
                for k, r in rows.items() if k != "alone") + f"; {time.perf_counter() - started:.0f} s")
    results["load_end"] = os.getloadavg()
    lines = ["| workload | runs | ms per run-step (median) | min-max | vs one run alone | compile s | "
             "run 0's warm-up loss vs alone (rel.) |", "|---|---|---:|---:|---:|---:|---:|"]
    for name, w in results["workloads"].items():
        for key, r in w["sizes"].items():
            what = "1, alone (make_chunk)" if key == "alone" else f"{r['runs']} together"
            lines.append(f"| {name} | {what} | {r['ms_per_run_step']:.3f} | {r['min_ms']:.3f}-{r['max_ms']:.3f} | "
                         f"{r['vs_alone']:.2f} | {r['compile_s']:.2f} | {r['rel_diff_run0']:.1e} |")
    text = "\n".join(lines)
    load = ", ".join(f"{x:.2f}" for x in results["load_end"])
    print(f"\n{text}\n\nload average (1, 5, 15 min) at the end: {load}")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "runs.json").write_text(json.dumps(results, indent=2))
        (args.out / "runs.md").write_text(text + "\n")
        print(f"wrote {args.out / 'runs.json'} and {args.out / 'runs.md'}")
    return results


if __name__ == "__main__":
    main()
