"""``fit`` (book ch. 3: ``Trainer.fit``): the book's surface on :func:`~fdl.train.train` for ``(X, y)`` arrays."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .. import parallel
from .._checks import expect_positive
from ..losses import check_targets
from ..ops._op import check_grad_mode
from ..optim import OptimizerLike, build
from .evaluate import CACHE_SIZE, runs_of, scores
from .loop import GivenPermutations, ShuffledEpochs, make_chunk
from .run import Chunk, History, expand_runs, init_runs, run_keys, take_run, train
from .state import StopRule, TrainState
from .step import make_train_step, model_loss

# ------------------------------------------------------------------------------------------------------ fit


def _check_data(X, y, what: str):
    if parallel.is_global(X) or parallel.is_global(y):  # rows laid out over devices (fdl.parallel.global_rows)
        return parallel.check_global_rows(X, y, lambda X, y: _check_data(X, y, what), what)
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


def _check_targets(model, loss, X, y, what: str) -> None:
    """Refuse targets the loss cannot compare with the model's outputs (:func:`fdl.losses.check_targets`)."""
    try:
        outputs = model.output_shape(X.shape[1:])
    except Exception:  # a model that cannot say: the loss checks what it can
        return
    parallel.together(check_targets, loss, outputs, parallel.local_rows(y), what)  # each process its own rows


def epoch_schedule(
    epochs: int,
    n: int,
    batch_size: int,
    *,
    eval_every: int | None = None,
    eval_every_steps: int | None = None,
    first_epoch: int = 0,
) -> list[Chunk]:
    """The list of :class:`Chunk` of ``epochs`` shuffled passes over ``n`` examples (book ch. 3: ``Trainer.fit``'s
    loop over epochs): one chunk per epoch, evaluated every ``eval_every`` epochs; or, with
    ``eval_every_steps`` (ch. 5: "every 100 batches"), chunks of that many steps, each evaluated.

    Epochs are numbered from ``first_epoch`` (a continued run's) and ``eval_every`` counts from epoch 0, so
    that a continued run evaluates where one longer run would. An epoch is ``n // batch_size`` full batches
    and, if ``n % batch_size``, one ragged batch.
    """
    full, ragged = divmod(n, batch_size)
    epochs_run = range(first_epoch, first_epoch + epochs)
    if eval_every_steps is None:
        return [Chunk(e, 0, full, ragged > 0, eval_every is not None and (e + 1) % eval_every == 0) for e in epochs_run]
    out = []
    for e in epochs_run:
        for start in range(0, full, eval_every_steps):
            count = min(eval_every_steps, full - start)
            out.append(Chunk(e, start, count, ragged > 0 and start + count == full, True))
        if full == 0:
            out.append(Chunk(e, 0, 0, True, True))
    return out


@functools.lru_cache(maxsize=CACHE_SIZE)
def _program(model, loss, grad: str, optimizer, epochs: int, steps_per_epoch: int, sampler):
    """The optimizer, the step and the compiled-chunk store of one training configuration, kept for later
    ``fit`` calls of the same model, loss, optimizer and shapes."""
    tx = build(optimizer, epochs, steps_per_epoch)
    step = make_train_step(model_loss(model, loss, grad=grad), tx)
    return tx, step, jax.jit(jax.vmap(tx.init)), {}, [0]  # [0]: times traced


def _configured(model, loss, grad, optimizer, epochs, steps_per_epoch, sampler):
    key = (
        model,
        loss,
        grad,
        optimizer,
        epochs if not isinstance(optimizer, optax.GradientTransformation) else 0,
        steps_per_epoch if not isinstance(optimizer, optax.GradientTransformation) else 0,
        sampler,
    )
    try:
        hash(key)
    except TypeError:
        return _program.__wrapped__(model, loss, grad, optimizer, epochs, steps_per_epoch, sampler)
    return _program(*key)


@functools.lru_cache(maxsize=CACHE_SIZE)
def _score(model, loss, metrics: tuple) -> Callable:
    """``score(state, (X, y)) -> {"loss", <metrics>}`` of one run at inference (one object per configuration,
    so that its compiled evaluation is reused)."""

    def score(state, data):
        return scores(model, loss, metrics, state.params, *data)

    return score


def _score_of(model, loss, metrics) -> Callable:
    items = tuple(sorted((metrics or {}).items()))
    try:
        return _score(model, loss, items)
    except TypeError:  # an unhashable model, loss or metric: a program for this call only
        return _score.__wrapped__(model, loss, items)


def _continued(model, state: TrainState, input_shape, runs: int, many: bool) -> tuple[TrainState, int]:
    """``state`` stacked for ``runs`` runs, and the epochs it completed (fit's ``state=``)."""
    if (
        isinstance(state, list | tuple)
        and not isinstance(state, TrainState)
        and state
        and all(isinstance(s, TrainState) for s in state)
    ):  # one state per run, e.g. [h.state for h in histories]
        state = jax.tree.map(lambda *a: np.stack(a), *state, is_leaf=lambda x: x is None)
    if not isinstance(state, TrainState):
        raise TypeError(f"fit: state must be a fdl.train.TrainState (e.g. history.state), got {type(state).__name__}")
    epochs = np.unique(np.asarray(state.epoch))
    if len(epochs) != 1:
        raise ValueError(
            f"fit: the runs of state completed different numbers of epochs ({epochs.tolist()}); "
            "continue runs that stopped at the same epoch together, or each on its own"
        )
    stacked_runs = runs_of(model, state.params, input_shape)
    if stacked_runs is None and not many:
        state = expand_runs(state._replace(epoch=None))
    elif stacked_runs != runs:
        raise ValueError(
            f"fit: state holds {stacked_runs or 1} run(s){'' if stacked_runs else ' (unstacked)'} "
            f"but {runs} run(s) were asked for (seed={runs if many else 'an int'}); continue a run "
            "with the seeds it was trained with"
        )
    return state, int(epochs[0])


def seeds_and_sweep(seed, sweep) -> tuple[list[int], list[dict], bool]:
    """The runs' seeds and swept hyperparameters (sweep outer, seeds inner), and whether they are many.

    Raises:
      TypeError: a ``seed`` neither an int nor a non-empty sequence of ints.
      ValueError: repeated seeds, or a swept name without values.
    """
    many = not isinstance(seed, int | np.integer) or bool(sweep)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        if (
            isinstance(seed, bool)
            or not isinstance(seed, Sequence | range | np.ndarray)
            or len(seed) == 0
            or any(isinstance(s, bool) or not isinstance(s, int | np.integer) for s in seed)
        ):
            raise TypeError(f"seed must be an int or a non-empty sequence of ints (one run per seed), got {seed!r}")
        seeds = [int(s) for s in seed]
    else:
        seeds = [int(seed)]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"the seeds {seeds} repeat one; each run needs its own seed")
    points = [{}]
    for name, values in (sweep or {}).items():
        values = list(np.atleast_1d(values))
        if not values:
            raise ValueError(f"sweep {name!r} has no values")
        points = [{**p, name: float(v)} for p in points for v in values]
    return [s for _ in points for s in seeds], [p for p in points for _ in seeds], many


def _inject(opt_state, hyperparams: list[dict], optimizer):
    """Set each run's swept hyperparameters in the stacked optimizer state (``optax.inject_hyperparams``)."""
    names = set(hyperparams[0])
    found = set()

    def visit(node):
        if hasattr(node, "hyperparams") and isinstance(node.hyperparams, dict):
            new = dict(node.hyperparams)
            for name in names & set(new):
                new[name] = jnp.asarray([h[name] for h in hyperparams], new[name].dtype)
                found.add(name)
            return node._replace(hyperparams=new)
        return node

    out = jax.tree.map(visit, opt_state, is_leaf=lambda n: hasattr(n, "hyperparams"))
    if names - found:
        raise TypeError(
            f"fit: cannot sweep {sorted(names - found)}: the optimizer {optimizer!r} does not hold "
            "it in its state; build it with optax.inject_hyperparams, e.g. "
            "optax.inject_hyperparams(optax.sgd)(learning_rate=0.1), and sweep its argument names"
        )
    return out


def _convolves_on_cpu(model, input_shape, dtype) -> bool:
    """Whether ``model`` runs an XLA convolution on the CPU, where several runs train one after another rather
    than ``vmap``-ed (see :func:`~fdl.train.make_chunk`'s ``vectorize``)."""
    if jax.default_backend() != "cpu":
        return False
    params = jax.eval_shape(lambda k: model.init(k, tuple(input_shape), dtype), jax.random.key(0))
    x = jax.ShapeDtypeStruct((2, *input_shape), dtype)
    return "conv_general_dilated" in str(jax.make_jaxpr(lambda p, x: model.apply(p, x))(params, x))


def _check_evaluation(rule, metrics) -> None:
    """The evaluated values' names (``"loss"`` is the test loss's, no metric's) and the early-stopping rule."""
    if metrics is not None and "loss" in metrics:
        raise ValueError(
            "fit: a metric may not be named 'loss', the test loss's own name; name it otherwise (e.g. 'book loss')"
        )
    if isinstance(rule, bool):
        return
    if not isinstance(rule, StopRule):
        raise TypeError(f"fit: early_stopping must be True, False or a fdl.train.StopRule, got {rule!r}")
    if not isinstance(rule.monitor, str) or not isinstance(rule.restore_best, bool):
        raise TypeError(f"fit: StopRule's monitor must be a name (str) and restore_best a bool, got {rule!r}")
    names = ["loss", *(metrics or {})]
    if rule.monitor not in names:
        raise ValueError(
            f"fit: early_stopping monitors {rule.monitor!r}, which is not evaluated; choose one of "
            f"{names} (add the value to metrics=)"
        )


def _shards(plugins) -> bool:
    """Whether a plugin lays batches out over devices (its chunks are not shared with other calls)."""
    return any(getattr(p, "mesh", None) is not None for p in plugins)


def fit(
    model,
    loss,
    optimizer: OptimizerLike,
    X_train,
    y_train,
    X_test=None,
    y_test=None,
    *,
    epochs: int = 100,
    eval_every: int = 10,
    batch_size: int = 32,
    seed: int | Sequence[int] = 1,
    early_stopping: bool | StopRule = True,
    grad: str = "manual",
    metrics: Mapping[str, Callable] | None = None,
    dtype=jnp.float32,
    log: Callable | None = print,
    state: TrainState | None = None,
    eval_every_steps: int | None = None,
    sweep: Mapping[str, Sequence[float]] | None = None,
    plugins: Sequence = (),
    permutations=None,
):
    """Train ``model`` on ``loss`` (book ch. 3: ``Trainer.fit``).

    One run, or several trained together as one compiled program (``seed`` a list, and/or a ``sweep``): each
    draws what ``fit(seed=s)`` draws (initial params, shuffles, dropout masks) and is evaluated and stopped on
    its own. Epochs run as compiled chunks (:func:`~fdl.train.make_chunk`), reused by a later ``fit`` of the
    same model, loss, optimizer and shapes. A non-finite training loss, or params that overflow, stop a run
    with a message naming the epoch and step; it returns its last finite params.

    Args:
      model: a :class:`~fdl.layers.Layer`.
      loss: a loss op, e.g. :func:`fdl.losses.mean_squared_error`.
      optimizer: an optax ``GradientTransformation`` (e.g. ``optax.adam(1e-3)``), or an fdl factory with
        per-epoch decay (``fdl.optim.momentum(0.1, 0.9, final_lr=0.05, decay_type="linear")``).
      X_train: inputs ``(n, *input_shape)``, numeric, finite; cast to ``dtype``.
      y_train: targets ``(n, *target_shape)``; integer class labels stay integers.
      X_test: test inputs (optional, with ``y_test``).
      y_test: test targets (optional, with ``X_test``).
      epochs: shuffled passes over the training data.
      eval_every: evaluate on the test set every this many epochs.
      batch_size: examples per step (each epoch's ragged last batch is kept).
      seed: the only source of randomness (init, shuffles, dropout); a list trains one run per seed.
      early_stopping: ``True``: the book's rule (stop when the test loss does not improve, return the best
        evaluation's params); ``False``; or a :class:`~fdl.train.StopRule`. A non-finite test loss always stops.
      grad: ``"manual"`` (hand-written VJPs) or ``"autodiff"`` (``jax.grad`` of the plain forward).
      metrics: ``{name: fn(predictions, targets)}``, jax-traceable, evaluated and logged with the test loss.
      dtype: the params' and inputs' floating-point type (float64 needs ``jax_enable_x64``).
      log: where the book-style lines go (``None``: silence).
      state: a :class:`~fdl.train.TrainState` to continue from (``history.state``; for several runs a list of
        them, or a stacked one); ``opt_state=None`` starts a fresh optimizer. Continuing for ``k`` epochs
        draws what the next ``k`` epochs of one longer run draw.
      eval_every_steps: evaluate every this many steps instead (ch. 5).
      sweep: ``{name: values}`` of optimizer hyperparameters, one run per value (the product over names, each
        with every seed); the optimizer must hold them in its state (``optax.inject_hyperparams``).
      plugins: e.g. :class:`~fdl.train.Checkpoint`, :class:`~fdl.train.DataParallel`,
        :class:`~fdl.train.Progress` (which ``FDL_PROGRESS=1`` adds).
      permutations: ``(epochs done + epochs, n)`` ints: epoch ``e`` (counting those ``state`` completed) visits
        the rows ``permutations[e]`` instead of a shuffle drawn from ``seed``, in every run
        (:class:`~fdl.train.GivenPermutations`).

    Returns:
      ``(params, history)`` for one run (an int ``seed``, no ``sweep``): the params pytree (leaves in
        ``dtype``) and its :class:`~fdl.train.History`; for several runs ``(params, histories)``, every leaf
        with a leading run axis (sweep values outer, seeds inner) and one history per run.

    Raises:
      ValueError: ``epochs``, ``eval_every``, ``batch_size`` or ``eval_every_steps`` not a positive integer;
        an unknown ``grad``; data without an example axis, with different numbers of examples in X and y, with
        no examples, or with NaN/Inf; only one of ``X_test`` and ``y_test``; test examples of another shape
        than the training examples; integer class labels outside the model's outputs; a float64 ``dtype``
        without ``jax_enable_x64``; repeated seeds or an empty sweep; a ``state`` for another number of runs;
        a ``StopRule`` monitoring a value that is not evaluated, or a metric named ``"loss"``; ``permutations``
        of another shape than ``(epochs done + epochs, n)`` or not permutations.
      TypeError: a non-floating ``dtype``; non-numeric data; an optimizer that is neither a transformation nor
        a factory (e.g. ``optax.adam`` uncalled); a ``seed`` that is neither an int nor a list of ints; a
        swept name the optimizer does not hold; ``early_stopping`` neither a bool nor a ``StopRule`` (of a
        str and a bool).
    """
    check_grad_mode(grad)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"fit: dtype must be a floating-point type (float32 or float64), got {jnp.dtype(dtype)}")
    if jnp.dtype(dtype).itemsize == 8 and not jax.config.jax_enable_x64:
        raise ValueError(
            "fit: dtype float64 needs 64-bit floats, which jax has off: call "
            "jax.config.update('jax_enable_x64', True) at the start of the program (or set "
            "JAX_ENABLE_X64=1), or train in float32"
        )
    for value, name in ((epochs, "epochs"), (eval_every, "eval_every"), (batch_size, "batch_size")):
        expect_positive(value, name, integer=True)
    if eval_every_steps is not None:
        expect_positive(eval_every_steps, "eval_every_steps", integer=True)
    seeds, hyperparams, many = seeds_and_sweep(seed, sweep)
    X_train, y_train = _check_data(X_train, y_train, "fit (training data)")
    if (X_test is None) != (y_test is None):
        given, missing = ("X_test", "y_test") if y_test is None else ("y_test", "X_test")
        raise ValueError(
            f"fit: {given} was given without {missing}; pass both to evaluate (and stop early), or neither"
        )
    has_test = X_test is not None
    if has_test:
        X_test, y_test = _check_data(X_test, y_test, "fit (test data)")
        if X_test.shape[1:] != X_train.shape[1:] or y_test.shape[1:] != y_train.shape[1:]:
            raise ValueError(
                f"fit: test examples {X_test.shape[1:]}/{y_test.shape[1:]} differ in shape from "
                f"training examples {X_train.shape[1:]}/{y_train.shape[1:]}"
            )
    _check_targets(model, loss, X_train, y_train, "fit")
    _check_evaluation(early_stopping, metrics)
    if has_test:
        _check_targets(model, loss, X_test, y_test, "fit (test data)")
    n, runs = len(X_train), len(seeds)
    if permutations is not None and (np.ndim(permutations) != 2 or np.shape(permutations)[1] != n):
        raise ValueError(
            f"fit: permutations {np.shape(permutations)} must have one row per epoch and one column per "
            f"training example ({n})"
        )
    sampler = ShuffledEpochs(n, batch_size) if permutations is None else GivenPermutations(permutations, batch_size)
    tx, step, init_opt, compiled, traces = _configured(
        model, loss, grad, optimizer, epochs, sampler.full_steps + sampler.ragged, sampler
    )
    keys = run_keys(seeds)
    first_epoch = 0
    if state is None:
        state = TrainState(init_runs(lambda k: model.init(k, X_train.shape[1:], dtype), keys[:, 0]), None)
    else:
        state, first_epoch = _continued(model, state, X_train.shape[1:], runs, many)
    if state.opt_state is None:
        state = state._replace(opt_state=init_opt(state.params))
    if sweep:
        state = state._replace(opt_state=_inject(state.opt_state, hyperparams, optimizer))
    state = state._replace(epoch=jnp.zeros(runs, jnp.int32))
    plugins = list(plugins)
    if os.environ.get("FDL_PROGRESS") == "1" and not any(type(p).__name__ == "Progress" for p in plugins):
        from .plugins import Progress

        plugins.append(Progress())

    def cast(a):
        return jnp.asarray(a) if np.issubdtype(a.dtype, np.integer) else jnp.asarray(a, dtype)

    def make(shard):
        count = lambda: traces.__setitem__(0, traces[0] + 1)  # noqa: E731
        return make_chunk(step, sampler, shard=shard, on_trace=count, runs=True, vectorize=vectorize)

    vectorize = runs == 1 or not _convolves_on_cpu(model, X_train.shape[1:], dtype)
    if permutations is not None and sampler.epochs < first_epoch + epochs:  # the width was checked above
        raise ValueError(
            f"fit: permutations {tuple(sampler.permutations.shape)} must be ({first_epoch + epochs}, {n}) "
            f"or longer: one row per epoch (epochs done {first_epoch} + epochs {epochs}), one column "
            "per training example"
        )
    schedule = epoch_schedule(
        epochs, n, batch_size, eval_every=eval_every, eval_every_steps=eval_every_steps, first_epoch=first_epoch
    )
    evaluation = None
    if has_test:
        evaluation = (_score_of(model, loss, metrics), (cast(X_test), cast(y_test)))
    histories = [History(seed=s, hyperparams=h) for s, h in zip(seeds, hyperparams, strict=True)]
    labels = (
        [""]
        if not many
        else [
            ", ".join([f"seed {s}"] + [f"{k} {v:g}" for k, v in h.items()])
            for s, h in zip(seeds, hyperparams, strict=True)
        ]
    )
    traced = traces[0]
    state, histories = train(
        make,
        state,
        (cast(X_train), cast(y_train)),
        schedule,
        key=keys[:, 1],
        evaluate=evaluation,
        early_stopping=early_stopping,
        log=log,
        plugins=plugins,
        batch_size=batch_size,
        unit="step" if eval_every_steps else "epoch",
        histories=histories,
        labels=labels,
        compiled=None if _shards(plugins) else compiled,
    )
    for h in histories:
        h.compilations = traces[0] - traced
    state = state._replace(epoch=np.array([h.best_epoch for h in histories]))
    if not many:
        histories[0].state = take_run(state, 0)
        return histories[0].state.params, histories[0]
    for r, h in enumerate(histories):
        h.state = take_run(state, r)
    return state.params, list(histories)
