"""``fit`` (book ch. 3: ``Trainer.fit``) and the loop that drives every training run, :func:`train`.

:func:`train` runs a *schedule* of chunks (:func:`~fdl.train.make_chunk`), each one compiled program of
many steps, and between chunks does what needs the host: checks that the loss and params stayed finite,
evaluates, stops early, and calls the plugins (checkpoints, devices, progress bars: :mod:`fdl.train.plugins`).
:func:`fit` is the book's surface on top of it for ``(X, y)`` arrays: shuffled epochs of batches,
evaluation on a test set every ``eval_every`` epochs (or every ``eval_every_steps`` steps), early stopping.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import expect_positive
from .._moved import refuse_keywords
from ..ops._op import check_grad_mode
from ..optim import OptimizerLike, build
from .evaluate import evaluate
from .loop import ShuffledEpochs, make_chunk
from .state import TrainState
from .step import make_train_step, model_loss


class Chunk(NamedTuple):
    """One entry of a schedule: steps ``start .. start + count`` of pass ``epoch`` (plus the ragged last
    batch if ``ragged``), then an evaluation if ``evaluate``.

    Python ints and bools (0-based ``epoch`` and ``start``); ``steps`` is ``count + ragged``. With
    :func:`fit`'s defaults one chunk is one epoch of the book's ``Trainer.fit`` (ch. 3). A plain container:
    nothing is checked.
    """

    epoch: int
    start: int
    count: int
    ragged: bool = False
    evaluate: bool = False

    @property
    def steps(self) -> int:
        return self.count + self.ragged


@dataclasses.dataclass
class History:
    """What a training run saw (the book's ``Trainer.fit`` prints it; ch. 3).

    Losses and seconds are Python floats, positions Python ints; ``evals`` values are Python floats (the
    metrics as their functions return them, converted with ``float``). A plain container: nothing is checked.

    Attributes:
      train_loss: the mean training loss of each chunk run (with :func:`fit`'s defaults, of each epoch).
      evals: one dict per evaluation: ``{"epoch", "step", "loss", <metric names>...}`` (``step``: steps so far).
      best_epoch: the epochs completed when the returned params were reached: the end of training, or with
        early stopping the last evaluation that improved.
      best_step: the same position in steps.
      stopped: why training ended early (``None`` if it ran to the end).
      state: the :class:`~fdl.train.TrainState` that goes with the returned params (continue training with
        ``fit(..., restart=False, state=history.state)``).
      compilations: how many times the training program was traced (1 per distinct chunk shape).
      seconds: wall seconds of each chunk run (training only: compilation and evaluation excluded).
      compile_seconds: wall seconds spent compiling the chunk programs.
    """

    train_loss: list = dataclasses.field(default_factory=list)
    evals: list = dataclasses.field(default_factory=list)
    best_epoch: int = 0
    best_step: int = 0
    stopped: str | None = None
    state: Any = None
    compilations: int = 0
    seconds: list = dataclasses.field(default_factory=list)
    compile_seconds: float = 0.0

    @property
    def opt_state(self):
        """The optimizer state of :attr:`state` (fdl 0.1's ``history.opt_state``)."""
        return None if self.state is None else self.state.opt_state


@dataclasses.dataclass
class Run:
    """A run in progress, as plugins see it (they may read everything and replace ``state``, ``data``,
    ``key``, ``done`` and ``shard`` in ``setup``).

    The state of the book's ``Trainer`` between epochs (ch. 3). ``state``: a :class:`TrainState`; ``data``:
    the pytree the sampler reads (e.g. ``(X, y)`` on the device); ``key``: a ``jax.random`` key; ``done`` and
    ``steps``: chunks and steps completed; ``best_loss``: a Python float (``inf`` before any evaluation).
    A plain container: nothing is checked.
    """

    state: TrainState
    data: Any
    key: Any
    schedule: Sequence[Chunk]
    history: History
    batch_size: int | None = None
    unit: str = "epoch"
    log: Callable = print
    done: int = 0                 # chunks completed
    steps: int = 0                # steps completed
    best_loss: float = math.inf
    best_state: Any = None
    best_done: int = 0
    best_steps: int = 0
    shard: Callable | None = None

    def position(self, done: int | None = None) -> int:
        """Epochs (``unit="epoch"``) or steps (``unit="step"``) completed after ``done`` chunks."""
        done = self.done if done is None else done
        if self.unit == "step":
            return sum(c.steps for c in self.schedule[:done])
        return self.schedule[done - 1].epoch + 1 if done else 0


def train(make_chunk_fn: Callable, state: TrainState, data, schedule: Sequence[Chunk], *, key,
          evaluate: Callable | None = None, early_stopping: bool = False, log: Callable | None = print,
          plugins: Sequence = (), batch_size: int | None = None, unit: str = "epoch") -> tuple[TrainState, History]:
    """Run ``schedule`` and return ``(state, history)``: the loop behind :func:`fit` and the character models.

    Args:
      make_chunk_fn: ``shard -> chunk``, e.g. ``lambda shard: make_chunk(step, sampler, shard=shard)``; called
        once, after the plugins' ``setup`` (a :class:`~fdl.train.DataParallel` plugin supplies ``shard``).
      state: the :class:`TrainState` to start from.
      data: the pytree the sampler reads batches from (on the device).
      schedule: the chunks to run, in order (:class:`Chunk`).
      key: the run's training key, passed to every chunk.
      evaluate: ``state -> {"loss": float, ...}``, called after each chunk whose ``evaluate`` is set.
      early_stopping: stop at the first evaluation whose loss is not below the best so far, and return the
        state of that best evaluation (the book's ``Trainer``).
      log: where the book-style lines go (``None``: silence).
      plugins: see :mod:`fdl.train.plugins`.
      batch_size: for plugins that check it (data parallelism).
      unit: ``"epoch"`` or ``"step"``, how positions are counted in logs and in ``history.evals``.

    A chunk whose loss, params or optimizer state is not finite stops training with a message naming the
    position; the state from before that chunk is returned (and no checkpoint is written for it).

    Returns:
      ``(state, history)``: the :class:`TrainState` of the returned position (the last finite state, or the
      best evaluation's with early stopping) and the :class:`History`.

    Raises nothing of its own (a non-finite loss is reported in ``history.stopped``, not raised); the errors
    of the plugins' hooks, of the chunk (the model's and the loss's, at trace time) and of ``evaluate``
    propagate, after every plugin's ``close`` has run.
    """
    say = log or (lambda *a, **k: None)
    history = History()
    run = Run(state, data, key, list(schedule), history, batch_size, unit, say, best_state=state)
    plugins = sorted(plugins, key=lambda p: getattr(p, "order", 50))
    for plugin in plugins:
        plugin.setup(run)
    chunk, compiled, stopped_early = make_chunk_fn(run.shard), {}, False
    try:
        for i in range(run.done, len(run.schedule)):
            c = run.schedule[i]
            args = (run.state, run.data, run.key, c.epoch, c.start)
            if (c.count, c.ragged) not in compiled:  # compile ahead, so that the timing below is training alone
                tic = time.perf_counter()
                compiled[c.count, c.ragged] = chunk.lower(*args, count=c.count, ragged=c.ragged).compile()
                history.compile_seconds += time.perf_counter() - tic
            tic = time.perf_counter()
            new, losses, finite = compiled[c.count, c.ragged](*args)
            losses = np.asarray(losses)
            history.seconds.append(time.perf_counter() - tic)
            if not bool(finite):
                history.stopped = _non_finite_message(run, c, losses)
                say(history.stopped)
                break
            run.state, run.done, run.steps = new, i + 1, run.steps + c.steps
            history.train_loss.append(float(losses.mean()))
            if c.evaluate and evaluate is not None and _evaluate(run, evaluate, early_stopping, say):
                stopped_early = True
                break
            for plugin in plugins:
                plugin.after_chunk(run)
    finally:
        for plugin in plugins:
            plugin.close(run)
    if not stopped_early:  # ran to the end, or stopped at non-finite values: the last finite state is the result
        run.best_state, run.best_done, run.best_steps = run.state, run.done, run.steps
    history.best_epoch, history.best_step = run.position(run.best_done), run.best_steps
    history.state = run.best_state
    return run.best_state, history


def _evaluate(run: Run, evaluate: Callable, early_stopping: bool, say: Callable) -> bool:
    """Evaluate, log as the book does; return True when early stopping ends the run."""
    at = run.position()
    result = {"epoch": run.schedule[run.done - 1].epoch + 1, "step": run.steps, **evaluate(run.state)}
    run.history.evals.append(result)
    what = "steps" if run.unit == "step" else "epochs"
    if early_stopping and result["loss"] >= run.best_loss:
        best_at = run.position(run.best_done)
        run.history.stopped = (f"Loss increased after {run.unit} {at}, final loss was {run.best_loss:.3f}, "
                               f"using the model from {run.unit} {best_at}")
        say(run.history.stopped)
        return True
    extra = "".join(f", {k} {v:.4f}" for k, v in result.items() if k not in ("epoch", "step", "loss"))
    say(f"Validation loss after {at} {what} is {result['loss']:.3f}{extra}")
    run.best_loss, run.best_state, run.best_done, run.best_steps = result["loss"], run.state, run.done, run.steps
    return False


def _non_finite_message(run: Run, c: Chunk, losses: np.ndarray) -> str:
    where = f"epoch {c.epoch + 1}" if run.unit == "epoch" else "training"
    before = (f"the end of {run.unit} {run.position()}" if run.done else "the start")
    if not np.all(np.isfinite(losses)):
        bad = int(np.argmin(np.isfinite(losses)))
        return (f"training loss became {losses[bad]} at {where}, step {c.start + bad + 1}; "
                f"returning the params from {before}")
    return (f"params or optimizer state became non-finite (overflow) at {where}, steps {c.start + 1}-"
            f"{c.start + c.steps}, although the training loss stayed finite; returning the params from {before}; "
            "lower the learning rate")


# ------------------------------------------------------------------------------------------------------ fit

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


def _check_labels(model, X, y, what: str) -> None:
    """Integer class labels must index the model's outputs (inside jit an out-of-range label gives NaN)."""
    if not np.issubdtype(y.dtype, np.integer) or y.ndim != 1:
        return
    try:
        classes = model.output_shape(X.shape[1:])[-1]
    except Exception:  # a model that cannot say: the loss checks what it can
        return
    if y.min() < 0 or y.max() >= classes:
        raise ValueError(f"{what}: integer class labels must lie in [0, {classes}) for the model's {classes} "
                         f"outputs, got labels from {y.min()} to {y.max()}; give the last layer one output per "
                         "class")


def epoch_schedule(epochs: int, n: int, batch_size: int, *, eval_every: int | None = None,
                   eval_every_steps: int | None = None) -> list[Chunk]:
    """The chunks of ``epochs`` shuffled passes over ``n`` examples: one chunk per epoch, evaluated every
    ``eval_every`` epochs; or, with ``eval_every_steps``, chunks of that many steps, each evaluated.

    The book's ``Trainer.fit`` loop over epochs (ch. 3) and ch. 5's evaluation "every 100 batches". Returns a
    list of :class:`Chunk`; an epoch of ``n // batch_size`` full batches and, if ``n % batch_size``, one
    ragged batch.

    The arguments are not checked here (:func:`fit` checks them first); only Python's own errors arise.

    Raises:
      ZeroDivisionError: ``batch_size == 0``.
      ValueError: ``eval_every_steps == 0`` (a ``range`` step of 0), with ``epochs > 0``.
    """
    full, ragged = divmod(n, batch_size)
    if eval_every_steps is None:
        return [Chunk(e, 0, full, ragged > 0, eval_every is not None and (e + 1) % eval_every == 0)
                for e in range(epochs)]
    out = []
    for e in range(epochs):
        for start in range(0, full, eval_every_steps):
            count = min(eval_every_steps, full - start)
            out.append(Chunk(e, start, count, ragged > 0 and start + count == full, True))
        if full == 0:
            out.append(Chunk(e, 0, 0, True, True))
    return out


def fit(model, loss, optimizer: OptimizerLike, X_train, y_train, X_test=None, y_test=None, *,
        epochs: int = 100, eval_every: int = 10, batch_size: int = 32, seed: int = 1, restart: bool = True,
        early_stopping: bool = True, grad: str = "manual", metrics: Mapping[str, Callable] | None = None,
        dtype=jnp.float32, log: Callable | None = print, state: TrainState | None = None,
        eval_every_steps: int | None = None, plugins: Sequence = (), **removed):
    """Train ``model`` on ``loss`` (book: ``Trainer.fit``). Returns ``(params, history)``.

    Args:
      model: a :class:`~fdl.layers.Layer` (e.g. from :func:`~fdl.layers.serial`).
      loss: a loss op, e.g. :func:`fdl.losses.mean_squared_error`.
      optimizer: an optax ``GradientTransformation`` (e.g. ``fdl.optim.sgd(0.01)``, ``optax.adam(1e-3)``), or
        an fdl factory with per-epoch decay (``fdl.optim.momentum(0.1, 0.9, final_lr=0.05, decay_type="linear")``).
      X_train: inputs ``(n, *input_shape)``, numeric, finite; cast to ``dtype``.
      y_train: targets ``(n, *target_shape)`` (integer class labels stay integers).
      X_test: test inputs, the same shape per example (optional; give ``y_test`` with it).
      y_test: test targets (optional; give ``X_test`` with it).
      epochs: shuffled passes over the training data (the ragged last batch of each is kept).
      eval_every: evaluate on the test set every this many epochs.
      batch_size: examples per step.
      seed: the only source of randomness (initialisation, shuffling, dropout).
      restart: initialise params and optimizer state afresh (the book's default); ``restart=False``
        continues from ``state`` (e.g. ``history.state`` of an earlier run).
      early_stopping: stop when the test loss rises, returning the params of the last evaluation that
        improved (the book prints "Loss increased after epoch N ...").
      grad: ``"manual"`` (hand-written VJPs) or ``"autodiff"`` (``jax.grad`` of the plain forward).
      metrics: ``{name: fn(predictions, targets)}`` evaluated and logged with the test loss.
      dtype: the params' and data's floating-point type (float32; float64 needs ``jax_enable_x64``).
      log: where the book-style lines go (``None`` for silence).
      state: a :class:`~fdl.train.TrainState` to continue from (with ``restart=False``); its ``opt_state``
        may be ``None`` for a fresh optimizer.
      eval_every_steps: evaluate every this many steps instead (ch. 5: "every 100 batches"); overrides
        ``eval_every``.
      plugins: optional pieces, e.g. ``[fdl.train.Checkpoint("run.npz", resume=True),
        fdl.train.DataParallel("all"), fdl.train.Progress()]``. ``FDL_PROGRESS=1`` in the environment (set
        by ``fdl run --progress``) adds a progress bar.

    Every epoch runs as compiled ``lax.scan`` chunks with the data on the device. A non-finite training
    loss, or params that overflow while the loss stays finite, stop training with a message naming the
    epoch and step; ``fit`` returns the last finite params (a checkpoint, if any, is left as it was).

    Returns:
      ``(params, history)``: the params pytree (leaves in ``dtype``, as ``model.init`` made them) and the
      :class:`History`.

    Raises:
      ValueError: ``epochs``, ``eval_every``, ``batch_size`` or ``eval_every_steps`` not a positive integer;
        an unknown ``grad``; data without an example axis, with different numbers of examples in X and y, with
        no examples, or with NaN/Inf; only one of ``X_test`` and ``y_test``; test examples of another shape
        than the training examples; ``restart=False`` without ``state`` or ``state`` with ``restart=True``;
        integer class labels outside the model's outputs; and the model's, the loss's and the plugins' own
        ValueErrors (e.g. a batch size the devices do not divide).
      TypeError: a non-floating ``dtype``; non-numeric data; an optimizer that is neither a transformation nor
        a factory (e.g. ``optax.adam`` uncalled); fdl 0.1's keyword arguments that moved to plugins (the
        message names the replacement) or any other unknown keyword.
    """
    refuse_keywords("fit", removed)
    check_grad_mode(grad)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"fit: dtype must be a floating-point type (float32 or float64), got {jnp.dtype(dtype)}")
    for value, name in ((epochs, "epochs"), (eval_every, "eval_every"), (batch_size, "batch_size")):
        expect_positive(value, name, integer=True)
    if eval_every_steps is not None:
        expect_positive(eval_every_steps, "eval_every_steps", integer=True)
    X_train, y_train = _check_data(X_train, y_train, "fit (training data)")
    if (X_test is None) != (y_test is None):
        given, missing = ("X_test", "y_test") if y_test is None else ("y_test", "X_test")
        raise ValueError(f"fit: {given} was given without {missing}; pass both to evaluate (and stop early), "
                         "or neither")
    has_test = X_test is not None
    if has_test:
        X_test, y_test = _check_data(X_test, y_test, "fit (test data)")
        if X_test.shape[1:] != X_train.shape[1:] or y_test.shape[1:] != y_train.shape[1:]:
            raise ValueError(f"fit: test examples {X_test.shape[1:]}/{y_test.shape[1:]} differ in shape from "
                             f"training examples {X_train.shape[1:]}/{y_train.shape[1:]}")
    if not restart and state is None:
        raise ValueError("fit: restart=False continues training and needs state=TrainState(params, opt_state) "
                         "(e.g. history.state of an earlier run)")
    if restart and state is not None:
        raise ValueError("fit: state= is only used with restart=False (restart=True initialises afresh)")

    _check_labels(model, X_train, y_train, "fit")
    n = len(X_train)
    sampler = ShuffledEpochs(n, batch_size)
    tx = build(optimizer, epochs, sampler.full_steps + sampler.ragged)
    key_init, key_train = jax.random.split(jax.random.key(seed))
    if restart:
        params = model.init(key_init, X_train.shape[1:], dtype)
        state = TrainState(params, tx.init(params))
    elif state.opt_state is None:
        state = state._replace(opt_state=tx.init(state.params))
    plugins = list(plugins)
    if os.environ.get("FDL_PROGRESS") == "1" and not any(type(p).__name__ == "Progress" for p in plugins):
        from .plugins import Progress
        plugins.append(Progress())

    def cast(a):
        return jnp.asarray(a) if np.issubdtype(a.dtype, np.integer) else jnp.asarray(a, dtype)

    step = make_train_step(model_loss(model, loss, grad=grad), tx)
    traces = [0]

    def make(shard):
        return make_chunk(step, sampler, shard=shard, on_trace=lambda: traces.__setitem__(0, traces[0] + 1))

    schedule = epoch_schedule(epochs, n, batch_size, eval_every=eval_every, eval_every_steps=eval_every_steps)
    evaluate_fn = (lambda s: evaluate(model, loss, s.params, X_test, y_test, metrics)) if has_test else None
    state, history = train(make, state, (cast(X_train), cast(y_train)), schedule, key=key_train,
                           evaluate=evaluate_fn, early_stopping=early_stopping, log=log, plugins=plugins,
                           batch_size=batch_size, unit="step" if eval_every_steps else "epoch")
    history.compilations = traces[0]
    return state.params, history
