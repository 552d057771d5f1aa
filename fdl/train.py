"""Training (book ch. 3: Trainer): one jitted train step, a whole epoch compiled as a ``lax.scan``, and ``fit``.

The Python loop in :func:`fit` only shuffles (by explicit keys), logs and decides; the epoch itself runs as
one compiled program with the data on the device, so nothing is pulled to the host per step. The epoch is
compiled once per model and data shape: a ragged last batch is one more step inside the same program.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import checkpoint, parallel
from ._checks import expect_positive
from .ops._op import check_grad_mode
from .optim import OptimizerLike, build


def make_loss_fn(model, loss, *, grad: str = "manual") -> Callable:
    """``(params, x, y, key) -> scalar``: the training loss of ``model`` (dropout on when ``key`` is given)."""
    check_grad_mode(grad)

    def loss_fn(params, x, y, key):
        return loss(model.apply(params, x, key=key, train=True, grad=grad), y, grad=grad)

    return loss_fn


def make_train_step(model, loss, optimizer: optax.GradientTransformation, *, grad: str = "manual") -> Callable:
    """The train step ``(params, opt_state, (x, y), key) -> (params, opt_state, loss)``, not yet jitted.

    Gradients come from the hand-written VJPs (``grad="manual"``) or from ``jax.grad`` of the plain
    forward (``grad="autodiff"``); everything else is identical. Wrap it in ``jax.jit`` to use it alone.
    """
    loss_fn = make_loss_fn(model, loss, grad=grad)

    def step(params, opt_state, batch, key):
        x, y = batch
        value, grads = jax.value_and_grad(loss_fn)(params, x, y, key)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    return step


def make_train_epoch(step: Callable, n: int, batch_size: int, on_trace: Callable | None = None,
                     shard_batches: Callable | None = None) -> Callable:
    """One shuffled pass over ``n`` examples, jitted: ``(params, opt_state, X, Y, key) -> (params, opt_state, losses)``.

    Full batches run in a ``lax.scan``; the last ``n % batch_size`` examples, if any, are one more step
    (the book keeps the ragged last batch). ``losses`` has one entry per step. ``shard_batches`` (see
    :mod:`fdl.parallel`) constrains the stacked batches ``(steps, batch, ...)`` to be split over devices.
    """
    full, rest = divmod(n, batch_size)

    def epoch(params, opt_state, X, Y, key):
        if on_trace is not None:
            on_trace()
        k_perm, k_steps = jax.random.split(key)
        perm = jax.random.permutation(k_perm, n)
        X, Y = jnp.take(X, perm, axis=0), jnp.take(Y, perm, axis=0)
        keys = jax.random.split(k_steps, full + (rest > 0))

        def body(carry, batch):
            xb, yb, k = batch
            p, s, value = step(*carry, (xb, yb), k)
            return (p, s), value

        split = full * batch_size
        xs = X[:split].reshape(full, batch_size, *X.shape[1:])
        ys = Y[:split].reshape(full, batch_size, *Y.shape[1:])
        if shard_batches is not None:
            xs, ys = shard_batches(xs), shard_batches(ys)
        (params, opt_state), losses = jax.lax.scan(body, (params, opt_state), (xs, ys, keys[:full]))
        if rest:
            params, opt_state, last = step(params, opt_state, (X[split:], Y[split:]), keys[full])
            losses = jnp.concatenate([losses, last[None]])
        return params, opt_state, losses

    return jax.jit(epoch)


def predict(model, params, X, *, batch_size: int | None = None):
    """``model.apply(params, X)`` at inference (no dropout), in chunks of ``batch_size`` rows if given."""
    apply = _jitted_apply(model)
    if batch_size is None or len(X) <= batch_size:
        return apply(params, X)
    return jnp.concatenate([apply(params, X[i:i + batch_size]) for i in range(0, len(X), batch_size)])


_APPLY_CACHE: dict = {}


def _jitted_apply(model):
    if model not in _APPLY_CACHE:
        _APPLY_CACHE[model] = jax.jit(lambda p, x: model.apply(p, x, train=False))
    return _APPLY_CACHE[model]


@dataclasses.dataclass
class History:
    """What :func:`fit` saw.

    Attributes:
      train_loss: mean training loss of each epoch run.
      evals: one dict per evaluation: ``{"epoch", "loss", <metric names>...}``.
      best_epoch: the epoch whose params ``fit`` returned (the last evaluation that improved).
      stopped: why training ended early (``None`` if it ran all epochs).
      opt_state: the optimizer state that goes with the returned params (for ``restart=False``).
      compilations: how many times the epoch program was traced (1 unless shapes changed).
    """

    train_loss: list = dataclasses.field(default_factory=list)
    evals: list = dataclasses.field(default_factory=list)
    best_epoch: int = 0
    stopped: str | None = None
    opt_state: object = None
    compilations: int = 0


def _check_data(X, y, what: str):
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim == 0 or y.ndim == 0:
        raise ValueError(f"{what}: X and y need a leading example axis, got shapes {X.shape} and {y.shape}")
    if len(X) != len(y):
        raise ValueError(f"{what}: X has {len(X)} examples but y has {len(y)}")
    if len(X) == 0:
        raise ValueError(f"{what}: no examples")
    for name, a in (("X", X), ("y", y)):
        if not np.issubdtype(a.dtype, np.number):
            raise TypeError(f"{what}: {name} must be numeric, got dtype {a.dtype}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{what}: {name} contains NaN or Inf; clean the data before training")
    return X, y


def evaluate(model, loss, params, X, y, metrics: Mapping[str, Callable] | None = None,
             batch_size: int | None = 10_000) -> dict:
    """The loss (and each metric) of ``params`` on ``(X, y)`` at inference, as Python floats."""
    pred = predict(model, params, X, batch_size=batch_size)
    y = jnp.asarray(y, pred.dtype)
    out = {"loss": float(loss(pred, y))}
    for name, fn in (metrics or {}).items():
        out[name] = float(fn(pred, y))
    return out


def fit(model, loss, optimizer: OptimizerLike, X_train, y_train, X_test=None, y_test=None, *,
        epochs: int = 100, eval_every: int = 10, batch_size: int = 32, seed: int = 1,
        restart: bool = True, early_stopping: bool = True, params=None, opt_state=None,
        grad: str = "manual", metrics: Mapping[str, Callable] | None = None,
        dtype=jnp.float32, eval_batch_size: int | None = 10_000, log: Callable | None = print,
        checkpoint=None, checkpoint_every: int = 1, resume: bool = False, devices=None, progress: bool | None = None):
    """Train ``model`` on ``loss`` (book: ``Trainer.fit``). Returns ``(params, history)``.

    Args:
      model: a :class:`~fdl.layers.Layer` (e.g. from :func:`~fdl.layers.serial`).
      loss: a loss op, e.g. :func:`fdl.losses.mean_squared_error`.
      optimizer: an optax GradientTransformation, or a factory ``(epochs, steps_per_epoch) -> transformation``.
      X_train, y_train, X_test, y_test: arrays with a leading example axis; the test set is optional.
      epochs: passes over the training data; each pass is shuffled with a key derived from ``seed``.
      eval_every: evaluate on the test set every this many epochs.
      batch_size: examples per step; the ragged last batch of an epoch is kept.
      seed: the only source of randomness (initialisation, shuffling, dropout).
      restart: initialise params and optimizer state afresh (the book's default). With ``restart=False``,
        training continues from ``params`` (and ``opt_state``, if given).
      early_stopping: stop when the test loss rises, returning the params of the last evaluation (the book
        prints "Loss increased after epoch N ...").
      grad: ``"manual"`` (hand-written VJPs) or ``"autodiff"`` (``jax.grad``).
      metrics: ``{name: fn(predictions, targets)}`` evaluated and logged with the test loss.
      log: where the book-style lines go (``None`` for silence).
      checkpoint: a ``.npz`` path; the run's state is saved there every ``checkpoint_every`` epochs.
      resume: continue from ``checkpoint`` if it exists; the result equals an uninterrupted run's.
      devices: ``None`` (one device), ``"all"``, a count or a list of devices: data-parallel training
        over a mesh (see :mod:`fdl.parallel`); ``batch_size`` must divide evenly among them.
      progress: show a progress bar over epochs with the running training loss (tqdm, the ``progress``
        extra; a plain line per epoch without it). Default: on when the environment sets ``FDL_PROGRESS=1``
        (as ``fdl run --progress`` does).

    A non-finite training loss stops training with a message naming the epoch and step, returning the
    params from before that epoch (the last checkpoint, if any, is left as it was).
    """
    check_grad_mode(grad)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"fit: dtype must be a floating-point type (float32 or float64), got {jnp.dtype(dtype)}")
    for value, name in ((epochs, "epochs"), (eval_every, "eval_every"), (batch_size, "batch_size"),
                        (checkpoint_every, "checkpoint_every")):
        expect_positive(value, name, integer=True)
    X_train, y_train = _check_data(X_train, y_train, "fit (training data)")
    has_test = X_test is not None and y_test is not None
    if has_test:
        X_test, y_test = _check_data(X_test, y_test, "fit (test data)")
        if X_test.shape[1:] != X_train.shape[1:] or y_test.shape[1:] != y_train.shape[1:]:
            raise ValueError(f"fit: test examples {X_test.shape[1:]}/{y_test.shape[1:]} differ in shape from "
                             f"training examples {X_train.shape[1:]}/{y_train.shape[1:]}")
    if not restart and params is None:
        raise ValueError("fit: restart=False continues training and needs params=...")
    if resume and checkpoint is None:
        raise ValueError("fit: resume=True needs checkpoint=PATH")
    say = log or (lambda *a, **k: None)

    n = len(X_train)
    tx = build(optimizer, epochs, math.ceil(n / batch_size))
    key_init, key_train = jax.random.split(jax.random.key(seed))
    if restart:
        params = model.init(key_init, X_train.shape[1:], dtype)
    if restart or opt_state is None:
        opt_state = tx.init(params)

    history = History()
    run = _Run(params, opt_state)
    if resume and Path(checkpoint).exists():
        run.restore(checkpoint, history, tx)
        key_train = run.key
        say(f"Resuming from {checkpoint} after epoch {run.epoch}")

    def traced():
        history.compilations += 1

    mesh = shard = None
    if devices is not None:
        mesh = parallel.make_mesh(devices)
        parallel.check_divisible(batch_size, mesh)
        shard = parallel.batch_constraint(mesh, batch_axis=1)
    epoch_fn = make_train_epoch(make_train_step(model, loss, tx, grad=grad), n, batch_size, traced, shard)
    X, Y = jnp.asarray(X_train, dtype), jnp.asarray(y_train, dtype)
    if mesh is not None:
        X, Y, run.params, run.opt_state = jax.device_put((X, Y, run.params, run.opt_state), parallel.replicated(mesh))

    history.best_epoch = epochs
    bar, close_bar = _progress_bar(progress, run.epoch, epochs, say)
    for e in range(run.epoch, epochs):
        params, opt_state, losses = epoch_fn(run.params, run.opt_state, X, Y, jax.random.fold_in(key_train, e))
        losses = np.asarray(losses)
        if not np.all(np.isfinite(losses)):
            bad = int(np.argmin(np.isfinite(losses)))
            history.stopped = (f"training loss became {losses[bad]} at epoch {e + 1}, step {bad + 1}; "
                               f"returning the params from the end of epoch {e}")
            history.best_epoch = e
            say(history.stopped)
            break
        run.params, run.opt_state, run.epoch = params, opt_state, e + 1
        history.train_loss.append(float(losses.mean()))
        bar(e + 1, history.train_loss[-1])
        if has_test and (e + 1) % eval_every == 0:
            result = {"epoch": e + 1, **evaluate(model, loss, params, X_test, y_test, metrics, eval_batch_size)}
            history.evals.append(result)
            if early_stopping and result["loss"] >= run.best_loss:
                history.stopped = (f"Loss increased after epoch {e + 1}, final loss was {run.best_loss:.3f}, "
                                   f"using the model from epoch {run.best_epoch}")
                history.best_epoch = run.best_epoch
                say(history.stopped)
                run.params, run.opt_state = run.best_params, run.best_state
                break
            extra = "".join(f", {k} {v:.4f}" for k, v in result.items() if k not in ("epoch", "loss"))
            say(f"Validation loss after {e + 1} epochs is {result['loss']:.3f}{extra}")
            run.best_loss, run.best_params, run.best_state, run.best_epoch = result["loss"], params, opt_state, e + 1
        if checkpoint is not None and ((e + 1) % checkpoint_every == 0 or e + 1 == epochs):
            run.save(checkpoint, history, key_train)
    close_bar()
    history.opt_state = run.opt_state
    return run.params, history


def _progress_bar(progress: bool | None, start: int, epochs: int, say: Callable):
    """``(update(epoch, train_loss), close())``: a tqdm bar, plain lines, or nothing."""
    if progress is None:
        progress = os.environ.get("FDL_PROGRESS") == "1"
    if not progress:
        return (lambda epoch, value: None), (lambda: None)
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return (lambda epoch, value: say(f"epoch {epoch}/{epochs}: train loss {value:.4f}")), (lambda: None)
    bar = tqdm(total=epochs, initial=start, unit="epoch", leave=False)

    def update(epoch, value):
        bar.update(1)
        bar.set_postfix(loss=f"{value:.4f}")

    return update, bar.close


class _Run:
    """The state ``fit`` carries from epoch to epoch, and what a checkpoint stores of it."""

    def __init__(self, params, opt_state):
        self.params, self.opt_state, self.epoch = params, opt_state, 0
        self.best_loss, self.best_params, self.best_state, self.best_epoch = math.inf, params, opt_state, 0
        self.key = None

    def save(self, path, history: History, key) -> None:
        checkpoint.save(path, params=self.params, opt_state=self.opt_state, key=key, epoch=self.epoch, extra={
            "best_loss": self.best_loss if math.isfinite(self.best_loss) else None, "best_epoch": self.best_epoch,
            "train_loss": history.train_loss, "evals": history.evals,
            "trees": {"best_params": self.best_params, "best_state": self.best_state}})

    def restore(self, path, history: History, tx) -> None:
        state = checkpoint.load(path, params_like=self.params, opt_state_like=self.opt_state,
                                trees_like={"best_params": self.params, "best_state": self.opt_state})
        extra = state["extra"]
        self.params, self.opt_state, self.epoch, self.key = (state["params"], state["opt_state"], state["epoch"],
                                                             state["key"])
        self.best_loss = math.inf if extra["best_loss"] is None else extra["best_loss"]
        self.best_epoch = extra["best_epoch"]
        self.best_params = state["trees"].get("best_params", self.params)
        self.best_state = state["trees"].get("best_state", self.opt_state)
        history.train_loss, history.evals = list(extra["train_loss"]), list(extra["evals"])
