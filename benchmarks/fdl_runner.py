"""fdl's rows, trained through the trainer's own pieces (:mod:`fdl.train`), data on the device.

``fdl``: a unit is compiled ``make_chunk`` calls, the ``lax.scan`` that ``fit`` runs, with ``ShuffledEpochs``
(W4: ``Prebatched`` over the unit's batches with :func:`fdl.recurrent.char_loss_fn`); ``fdl-autodiff``: the
same with gradients by ``jax.grad``; ``fdl-step``: the hand-written step jitted alone, one call per batch.
:class:`FdlRunsRunner` is ``--runs``: S runs trained together, as ``fit(..., seed=[...])`` trains them.
"""

from __future__ import annotations

import time

import numpy as np

from .inputs import SEED, load_params, unit_key
from .workloads import WORKLOADS, fdl_training


class FdlRunner:
    """One fdl implementation of workload ``name`` on the inputs ``data`` (the .npz); ``run(u)`` trains unit
    ``u`` and returns its losses."""

    def __init__(self, name, data, impl, conv_impl=None):
        import jax
        import jax.numpy as jnp

        from fdl.train import Prebatched, ShuffledEpochs, TrainState, make_chunk, make_train_step, model_loss

        w = WORKLOADS[name]
        self.jax, self.impl = jax, impl
        grad = "autodiff" if impl == "fdl-autodiff" else "manual"
        model, loss, tx = fdl_training(w, conv_impl)
        params = jax.tree.map(jnp.asarray, load_params(data))
        start = time.perf_counter()
        if w.recurrent:
            from fdl.recurrent import char_loss_fn

            step = make_train_step(char_loss_fn(model, w.vocab, grad=grad, reduction="sum"), tx)
            self.state = TrainState(params, tx.init(params), model.zero_state())
            # every unit's batches already on the device, so indexing dispatches nothing
            self.data = [(jnp.asarray(x), jnp.asarray(y)) for x, y in zip(data["xid"], data["yid"], strict=True)]
            self.key, steps = jax.random.key(SEED), len(data["xid"][0])
            self.per_char = w.batch * w.seq  # the step's loss is the book's sum; report per character
            if impl == "fdl-step":
                self.run, self.batches = self._lstm_steps, [[(x[i], y[i]) for i in range(steps)] for x, y in self.data]
                self.step = jax.jit(step).lower(self.state, self.batches[0][0], self.key).compile()
            else:
                self.run = self._lstm_unit
                self.chunk = (
                    make_chunk(step, Prebatched())
                    .lower(self.state, self.data[0], self.key, 0, 0, count=steps)
                    .compile()
                )
        else:
            step = make_train_step(model_loss(model, loss, grad=grad), tx)
            self.state = TrainState(params, tx.init(params))
            self.data = (jnp.asarray(data["X"]), jnp.asarray(data["Y"]))
            n, batch = len(self.data[0]), w.batch
            self.perm, self.batch = data["perm"], batch
            self.keys = [unit_key(u) for u in range(self.perm.shape[0])]
            self.sync_each_epoch = w.epochs is not None  # W5: fit reads each epoch's losses
            if impl == "fdl-step":
                jstep, self.run = jax.jit(step), self._steps
                self.steps = {
                    b: jstep.lower(self.state, (self.data[0][:b], self.data[1][:b]), self.keys[0]).compile()
                    for b in {batch, n % batch} - {0}
                }
                self.perm_dev = [[jnp.asarray(p) for p in unit] for unit in self.perm]
            else:
                sampler = ShuffledEpochs(n, batch)
                self.count, self.ragged = sampler.full_steps, sampler.ragged
                self.chunk = (
                    make_chunk(step, sampler)
                    .lower(self.state, self.data, self.keys[0], 0, 0, count=self.count, ragged=self.ragged)
                    .compile()
                )
                self.run = self._epochs
        self.compile_s = time.perf_counter() - start

    def _epochs(self, u):
        out = []
        for e in range(self.perm.shape[1]):  # the sampler's epoch e of unit u's key: the order the file holds
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
                xb, yb = X[i : i + self.batch], Y[i : i + self.batch]
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

    def __init__(self, name, data, sizes, conv_impl=None):
        import jax
        import jax.numpy as jnp

        from fdl.train import ShuffledEpochs, TrainState, make_chunk, make_train_step, model_loss

        w = WORKLOADS[name]
        if w.recurrent:
            raise ValueError(f"--runs times the dense and conv workloads, not {name}")
        self.jax = jax
        model, loss, tx = fdl_training(w, conv_impl)
        params = jax.tree.map(jnp.asarray, load_params(data))
        step = make_train_step(model_loss(model, loss), tx)
        self.data = (jnp.asarray(data["X"]), jnp.asarray(data["Y"]))
        sampler = ShuffledEpochs(len(self.data[0]), w.batch)
        units, self.epochs = data["perm"].shape[:2]
        unit_keys = [unit_key(u) for u in range(units)]
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
            self.chunks[S] = many.lower(
                self.states[S], self.data, self.keys[S][0], 0, 0, self.active[S], **shape
            ).compile()
            self.compile_s[S] = time.perf_counter() - start

    def run(self, u, size):
        out = []
        for e in range(self.epochs):  # the sampler's epoch e of unit u's key, as in FdlRunner
            args = (self.states[size], self.data, self.keys[size][u], e, 0) + ((self.active[size],) if size else ())
            self.states[size], losses, _ = self.chunks[size](*args)
            out.append(losses[0] if size else losses)  # run 0's losses: steps per run
        self.jax.block_until_ready((self.states[size], out))
        return out
