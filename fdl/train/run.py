"""The loop that drives every training run, :func:`train`: a *schedule* of compiled chunks
(:func:`~fdl.train.make_chunk`) and, between them, what needs the host: finiteness, evaluation, early
stopping, logs, plugins (:mod:`fdl.train.plugins`).

Every run here is *stacked*: each leaf of the state and each key has a leading run axis (``S = 1`` for one
run); :func:`fdl.fit` and :func:`fdl.recurrent.fit_chars` stack and unstack.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import parallel
from .state import EarlyStopping, StopRule, TrainState, select


class Chunk(NamedTuple):
    """One entry of a schedule: steps ``start .. start + count`` of pass ``epoch`` (0-based ints), plus the ragged
    last batch if ``ragged``, then an evaluation if ``evaluate``; ``steps`` is ``count + ragged``."""

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
    """What one training run saw (the book's ``Trainer.fit`` prints it; ch. 3). Losses and seconds are Python
    floats, positions Python ints.

    Attributes:
      train_loss: the mean training loss of each chunk run (with :func:`fdl.fit`'s defaults, of each epoch).
      evals: one dict per evaluation: ``{"epoch", "step", "loss", <metric names>...}`` (``step``: steps so far).
      best_epoch: the epochs completed when the returned params were reached (the end of training, or the
        evaluation early stopping chose).
      best_step: the same position in steps.
      stopped: why training ended early (``None`` if it ran to the end).
      state: the :class:`~fdl.train.TrainState` of the returned params (``fit(..., state=history.state)``
        continues it).
      compilations: training programs this call compiled (0 when an earlier call compiled them).
      seconds: wall seconds of each chunk (training only; shared by the runs trained together).
      compile_seconds: wall seconds spent compiling the chunk programs.
      seed: the run's seed.
      hyperparams: the run's swept hyperparameters (``{}`` without a sweep).
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
    seed: int | None = None
    hyperparams: dict = dataclasses.field(default_factory=dict)

    @property
    def opt_state(self):
        """The optimizer state of :attr:`state`."""
        return None if self.state is None else self.state.opt_state


class Run(NamedTuple):
    """A training run in progress (one or several runs stacked), as the loop and the plugins see it: a value,
    replaced (``run._replace(...)``), never edited in place.

    ``state``: the stacked :class:`TrainState`; ``stopping``: the stacked :class:`~fdl.train.EarlyStopping`;
    ``key``: the runs' keys ``(S,)``; ``data``: the pytree the sampler reads; ``done``: chunks completed;
    ``histories``: one :class:`History` per run; ``reached``: ``(S,)`` chunks each run completed while it
    trained; ``labels``: how the log names each run (``""`` for a single run); ``shard``: a batch-layout
    function (:class:`~fdl.train.DataParallel`); ``eval_data``: what ``train``'s ``evaluate`` scores.
    """

    state: TrainState
    stopping: EarlyStopping
    key: Any
    data: Any
    schedule: tuple
    histories: tuple
    done: int = 0
    reached: Any = None
    labels: tuple = ("",)
    batch_size: int | None = None
    unit: str = "epoch"
    log: Callable = print
    shard: Callable | None = None
    eval_data: Any = None

    @property
    def runs(self) -> int:
        return len(self.histories)

    def position(self, done: int | None = None) -> int:
        """Epochs (``unit="epoch"``) or steps (``unit="step"``) completed after ``done`` chunks."""
        done = self.done if done is None else int(done)
        if self.unit == "step":
            return self.steps(done)
        return self.schedule[done - 1].epoch + 1 if done else (self.schedule[0].epoch if self.schedule else 0)

    def steps(self, done: int | None = None) -> int:
        """Steps completed after ``done`` chunks (of this schedule)."""
        return sum(c.steps for c in self.schedule[: self.done if done is None else int(done)])


def run_keys(seeds) -> jax.Array:
    """``(runs, 2)`` keys: each seed's ``jax.random.split(key(seed))``, the init key and the training key."""
    return jnp.stack([jax.random.split(jax.random.key(s)) for s in seeds])


@jax.jit
def expand_runs(tree):
    """A pytree with a leading run axis of one (one program per tree structure)."""
    return jax.tree.map(lambda a: a[None], tree)


@jax.jit
def _take(tree, r):
    return jax.tree.map(lambda a: a[r], tree)


def take_run(state: TrainState, r: int) -> TrainState:
    """Run ``r`` of a stacked :class:`TrainState` whose ``epoch`` is a host array, its ``epoch`` an int."""
    return _take(state._replace(epoch=None), r)._replace(epoch=int(np.asarray(state.epoch)[r]))


def init_runs(init: Callable, keys):
    """``init(key)`` for each of ``keys``, stacked on a leading run axis (several ``jax.vmap``-ed)."""
    return expand_runs(init(keys[0])) if len(keys) == 1 else jax.vmap(init)(keys)


@functools.lru_cache(maxsize=8)
def _evaluation(score: Callable) -> Callable:
    """The compiled ``(rule, states, stopping, eval_data, at) -> (results, stopping)`` of ``score``: every run
    scored one after another (``lax.map``) and its early stopping updated (``rule``: a :class:`StopRule`, or
    ``None``), as one program."""

    def evaluate(rule, states, stopping, eval_data, at):
        if jax.tree.leaves(states.params)[0].shape[0] == 1:  # one run: the one-run program, bitwise
            results = jax.tree.map(lambda a: a[None], score(jax.tree.map(lambda a: a[0], states), eval_data))
        else:
            results = jax.lax.map(lambda s: score(s, eval_data), states)
        watched = results["loss"] if rule is None else results[rule.monitor]
        watched = jnp.where(jnp.isfinite(results["loss"]), watched, jnp.nan)  # a non-finite loss always stops
        update = jax.vmap(
            lambda es, value, s: es.update(
                value, s, at, enabled=rule is not None, restore_best=rule is None or rule.restore_best
            )
        )
        return results, update(stopping, watched, states)

    return jax.jit(evaluate, static_argnums=0)


@jax.jit
def _result(states, stopping):
    """Each run's returned state: the one early stopping chose if it ended the run, else its last."""
    return select(stopping.stopped_early, stopping.best, states)


def train(
    make_chunk_fn: Callable,
    state: TrainState,
    data,
    schedule: Sequence[Chunk],
    *,
    key,
    evaluate: tuple | None = None,
    early_stopping: bool | StopRule = False,
    log: Callable | None = print,
    plugins: Sequence = (),
    batch_size: int | None = None,
    unit: str = "epoch",
    histories: Sequence[History] | None = None,
    labels: Sequence[str] | None = None,
    compiled: dict | None = None,
):
    """Run ``schedule`` for the stacked runs in ``state`` and return ``(state, histories)``.

    Args:
      make_chunk_fn: ``shard -> chunk``, e.g. ``lambda shard: make_chunk(step, sampler, shard=shard,
        runs=True)``; called once, after the plugins' ``setup``.
      state: the stacked :class:`TrainState` to start from (every leaf with a leading run axis ``S``).
      data: the pytree the sampler reads batches from (on the device).
      schedule: the chunks to run, in order (:class:`Chunk`).
      key: the runs' training keys, ``(S,)``.
      evaluate: ``(score, eval_data)``: ``score(state, eval_data) -> {"loss": 0-D array, ...}`` for one run,
        jax-traceable and hashable (the same object reuses its compiled program); called after each chunk
        whose ``evaluate`` is set.
      early_stopping: ``True`` (the book's rule), ``False`` or a :class:`StopRule`, as for :func:`fdl.fit`.
      log: where the book-style lines go (``None``: silence); with several processes, process 0's alone
        (:func:`fdl.parallel.log_from_every_process` to hear every process).
      plugins: see :mod:`fdl.train.plugins`.
      batch_size: for plugins that check it (data parallelism, checkpoints).
      unit: ``"epoch"`` or ``"step"``, how positions are counted in logs and in ``History.evals``.
      histories: one :class:`History` per run to fill (default: new ones).
      labels: how the log names each run (default: nothing for one run, ``run i`` for several).
      compiled: a dict in which to keep the compiled chunks, so that later calls compile nothing.

    A run whose loss, params or optimizer state become non-finite during a chunk stops alone (the reason in
    ``History.stopped``) and returns its state from before that chunk.

    Returns:
      ``(state, histories)``: the stacked :class:`TrainState` of each run's returned position (its last
        finite state, or the one early stopping chose), and the histories.

    Raises:
      TypeError: a plugin hook that returns no :class:`Run` (after every plugin's ``close`` has run).
    """
    say = parallel.voice(log) or (lambda *a, **k: None)  # several processes: process 0 alone logs
    runs = len(jax.tree.leaves(key)[0]) if jax.tree.leaves(key) else 1
    histories = tuple(histories) if histories is not None else tuple(History() for _ in range(runs))
    labels = tuple(labels) if labels is not None else (("",) if runs == 1 else tuple(f"run {i}" for i in range(runs)))
    floats = [a for a in jax.tree.leaves(state.params) if jnp.issubdtype(a.dtype, jnp.floating)]
    loss_dtype = floats[0].dtype if floats else jnp.float32
    stopping = EarlyStopping(
        jnp.full(runs, jnp.inf, loss_dtype),
        jnp.zeros(runs, jnp.int32),
        jnp.ones(runs, bool),
        jnp.zeros(runs, bool),
        state,
    )
    run = Run(
        state,
        stopping,
        key,
        data,
        tuple(schedule),
        histories,
        0,
        np.zeros(runs, int),
        labels,
        batch_size,
        unit,
        say,
        eval_data=None if evaluate is None else evaluate[1],
    )
    plugins = sorted(plugins, key=lambda p: getattr(p, "order", 50))
    for plugin in plugins:
        run = _checked(plugin, "setup", plugin.setup(run))
    histories = run.histories
    evaluate = None if evaluate is None else (evaluate[0], run.eval_data)
    rule = StopRule() if early_stopping is True else (early_stopping or None)
    chunk, compiled = make_chunk_fn(run.shard), ({} if compiled is None else compiled)
    try:
        for i in range(run.done, len(run.schedule)):
            c = run.schedule[i]
            args = (run.state, run.data, run.key, jnp.int32(c.epoch), jnp.int32(c.start), run.stopping.active)
            sig = (c.count, c.ragged, _signature(args))
            if sig not in compiled:  # compile ahead, so that the timing below is training alone
                tic = time.perf_counter()
                compiled[sig] = chunk.lower(*args, count=c.count, ragged=c.ragged).compile()
                for h in histories:
                    h.compile_seconds += time.perf_counter() - tic
            active = np.asarray(run.stopping.active)
            tic = time.perf_counter()
            new, losses, finite = compiled[sig](*args)
            losses, finite = np.asarray(losses), np.asarray(finite)
            for h in histories:
                h.seconds.append(time.perf_counter() - tic)
            run = _after_chunk(run, c, i, new, losses, finite, active, say)
            if c.evaluate and evaluate is not None and np.asarray(run.stopping.active).any():
                run = _after_evaluation(run, evaluate, rule, np.asarray(run.stopping.active), say)
            if not np.asarray(run.stopping.active).any():
                break
            for plugin in plugins:
                run = _checked(plugin, "after_chunk", plugin.after_chunk(run))
    finally:
        for plugin in plugins:
            plugin.close(run)
    result = _result(run.state, run.stopping)
    stopped_early, best_at = np.asarray(run.stopping.stopped_early), np.asarray(run.stopping.best_at)
    for r, h in enumerate(histories):
        at = best_at[r] if stopped_early[r] else run.reached[r]
        h.best_epoch, h.best_step = run.position(at), run.steps(at)
    return result, histories


def _checked(plugin, hook: str, run):
    if not isinstance(run, Run):
        raise TypeError(
            f"plugin {type(plugin).__name__}.{hook} must return the run (a fdl.train.Run; "
            f"unchanged, or a new one from run._replace(...)), got {run!r}"
        )
    return run


def _signature(args) -> tuple:
    leaves, tree = jax.tree.flatten(args)
    return tree, tuple((jnp.shape(a), jnp.result_type(a), getattr(a, "sharding", None)) for a in leaves)


def _prefix(run: Run, r: int) -> str:
    return f"{run.labels[r]}: " if run.labels[r] else ""


def _after_chunk(run: Run, c: Chunk, i: int, new, losses, finite, active, say) -> Run:
    """The run after chunk ``i``: runs that went non-finite stop (the chunk kept their old state)."""
    reached = run.reached.copy()
    for r in np.flatnonzero(active):
        if finite[r]:
            run.histories[r].train_loss.append(float(losses[r].mean()))
            reached[r] = i + 1
        else:
            run.histories[r].stopped = _prefix(run, r) + _non_finite_message(run, c, losses[r])
            say(run.histories[r].stopped)
    stopping = run.stopping
    if not np.all(finite[active]):
        stopping = stopping._replace(active=jnp.asarray(active & finite))
    return run._replace(state=new, done=i + 1, reached=reached, stopping=stopping)


def _after_evaluation(run: Run, evaluate: tuple, rule: StopRule | None, active, say) -> Run:
    """Evaluate the runs, update their early stopping, log as the book does."""
    score, eval_data = evaluate
    at = run.position()
    what = "steps" if run.unit == "step" else "epochs"
    try:
        program = _evaluation(score)
    except TypeError:  # an unhashable score: compiled for this call
        program = _evaluation.__wrapped__(score)
    results, stopping = program(rule, run.state, run.stopping, eval_data, jnp.int32(run.done))
    results = {k: np.asarray(v) for k, v in results.items()}
    now_active = np.asarray(stopping.active)
    best_loss, best_at = np.asarray(run.stopping.best_loss), np.asarray(run.stopping.best_at)
    watched = "loss" if rule is None else rule.monitor
    for r in np.flatnonzero(active):
        result = {
            "epoch": run.schedule[run.done - 1].epoch + 1,
            "step": run.steps(),
            **{k: float(v[r]) for k, v in results.items()},
        }
        run.histories[r].evals.append(result)
        loss = result["loss"]
        if now_active[r]:
            extra = "".join(f", {k} {v:.4f}" for k, v in result.items() if k not in ("epoch", "step", "loss"))
            say(f"{_prefix(run, r)}Validation loss after {at} {what} is {loss:.3f}{extra}")
            continue
        best_pos = run.position(best_at[r])
        if not np.isfinite(loss):
            message = (
                f"Validation loss became {loss} after {run.unit} {at} (the model diverged); using the "
                f"model from {run.unit} {best_pos}"
                + (
                    f", the best evaluation (loss {best_loss[r]:.3f})"
                    if np.isfinite(best_loss[r])
                    else ", before any finite evaluation"
                )
            )
        elif rule.restore_best:
            message = (
                f"{watched.capitalize()} increased after {run.unit} {at}, final {watched} was "
                f"{best_loss[r]:.3f}, using the model from {run.unit} {best_pos}"
            )
        else:
            message = (
                f"{watched.capitalize()} increased after {run.unit} {at} (value {result[watched]:.3f}, best "
                f"{best_loss[r]:.3f} at {run.unit} {best_pos}); keeping the model trained through "
                f"{run.unit} {at}, as the book's notebooks do"
            )
        run.histories[r].stopped = _prefix(run, r) + message
        say(run.histories[r].stopped)
    return run._replace(stopping=stopping)


def _non_finite_message(run: Run, c: Chunk, losses: np.ndarray) -> str:
    where = f"epoch {c.epoch + 1}" if run.unit == "epoch" else "training"
    before = f"the end of {run.unit} {run.position()}" if run.done else "the start"
    if not np.all(np.isfinite(losses)):
        bad = int(np.argmin(np.isfinite(losses)))
        return (
            f"training loss became {losses[bad]} at {where}, step {c.start + bad + 1}; "
            f"returning the params from {before}"
        )
    return (
        f"params or optimizer state became non-finite (overflow) at {where}, steps {c.start + 1}-"
        f"{c.start + c.steps}, although the training loss stayed finite; returning the params from {before}; "
        "lower the learning rate"
    )
