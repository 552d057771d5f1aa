"""The inputs every worker reads: initial weights, data and each unit's batch order, written once as an .npz.

Data: synthetic for W1-W3 (standard-normal images labelled by a fixed random linear teacher), the Boston training
set for W5, Hamlet windows for W4 (:func:`fdl.data.text.random_batch`). Batch orders come from fdl's own
sampler, :class:`fdl.train.ShuffledEpochs`: unit ``u`` trains with :func:`unit_key` ``(u)`` and epoch ``e`` of
the unit is the sampler's epoch ``e``, so the fdl rows (which run the sampler inside their compiled epoch) and
the rows that take the order from this file (PyTorch, one jitted step per call) see the same batches.
"""

from __future__ import annotations

import numpy as np

from .workloads import WORKLOADS, fdl_training, unit_shape

SEED = 0


def unit_key(unit: int):
    """The key unit ``unit`` trains with; the sampler folds the epoch into it."""
    import jax

    return jax.random.fold_in(jax.random.key(SEED + 1), unit)


def epoch_order(sampler, key, epoch: int) -> np.ndarray:
    """The order in which ``sampler`` (a :class:`fdl.train.ShuffledEpochs`) visits the examples in ``epoch``:
    its full batches' rows, then the ragged last batch's."""
    rows, _, last = sampler.plan(None, key, epoch, 0, sampler.full_steps, sampler.ragged)
    parts = [np.asarray(rows).reshape(-1)] + ([] if last is None else [np.asarray(last[0])])
    return np.concatenate(parts).astype(np.int64)


def write_inputs(name: str, quick: bool, units: int, path) -> None:
    """Initial weights, data and every unit's batch order for ``units`` units of workload ``name``, to ``path``."""
    import jax

    from fdl.data import boston_split, load_text
    from fdl.data.text import Vocabulary, random_batch
    from fdl.train import ShuffledEpochs

    w = WORKLOADS[name]
    model, _, _ = fdl_training(w)
    key = jax.random.key(SEED)
    out = {}
    epochs, steps, n = unit_shape(w, quick)
    if w.recurrent:
        ids = Vocabulary.from_text(load_text("hamlet")).encode(load_text("hamlet"))
        params = model.init(key, w.input)
        pairs = [random_batch(ids, jax.random.fold_in(key, k), w.batch, w.seq) for k in range(units * steps)]
        shape = (units, steps, w.batch, w.seq)
        out["xid"] = np.stack([p[0] for p in pairs]).reshape(shape).astype(np.int32)
        out["yid"] = np.stack([p[1] for p in pairs]).reshape(shape).astype(np.int32)
    else:
        if w.epochs is not None:
            X, _, Y, _ = boston_split()
            X, Y = np.asarray(X, np.float32), np.asarray(Y, np.float32)
            n = len(X)
        else:
            rng = np.random.default_rng(SEED)
            X = rng.standard_normal((n, *w.input), dtype=np.float32)
            teacher = rng.standard_normal((X[0].size, 10), dtype=np.float32)
            Y = np.eye(10, dtype=np.float32)[np.argmax(X.reshape(n, -1) @ teacher, axis=1)]
        params = model.init(key, X.shape[1:])
        out["X"], out["Y"] = X, Y
        sampler = ShuffledEpochs(n, w.batch)
        out["perm"] = np.stack(
            [np.stack([epoch_order(sampler, unit_key(u), e) for e in range(epochs)]) for u in range(units)]
        )
    for i, layer in enumerate(params):
        for k, v in layer.items():
            out[f"param{i}.{k}"] = np.asarray(v)
    np.savez(path, **out)


def load_params(data) -> list[dict]:
    """The initial weights from the .npz: one dict per layer, fdl's layout."""
    layers: dict[int, dict] = {}
    for key in data.files:
        if key.startswith("param"):
            i, name = key[5:].split(".", 1)
            layers.setdefault(int(i), {})[name] = data[key]
    return [layers[i] for i in sorted(layers)]
