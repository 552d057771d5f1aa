"""Optional pieces that plug into :func:`fdl.train.train` (and so :func:`fdl.fit`): checkpoints, several
devices, a progress bar.

A plugin is any object with three methods, each given the :class:`~fdl.train.Run` in progress (a value):

* ``setup(run) -> run``: before the first chunk; may return a run with another ``state``, ``data``, ``key``,
  ``stopping``, ``done`` (to resume) or ``shard`` (to split batches over devices);
* ``after_chunk(run) -> run``: after every chunk in which some run trained (and its evaluation);
* ``close(run)``: at the end, also after an error.

``setup`` and ``after_chunk`` return the run, unchanged or as ``run._replace(...)``; none edits it in place.
Plugins run in the order of their ``order`` attribute: :class:`Checkpoint` (10) restores before
:class:`DataParallel` (20) places the restored state on the devices; :class:`Progress` (30) comes last.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import jax
import numpy as np

from .. import checkpoint as ckpt
from .. import parallel
from .._checks import expect_positive


class Plugin:
    """Base class with hooks that return the run unchanged (subclass it, or write any object with the three
    methods).

    ``setup`` and ``after_chunk`` take the :class:`~fdl.train.Run` and return it (or a new one); ``close``
    returns None. What a plugin raises in a hook stops the training (``close`` still runs). ``order`` (an
    int, default 50) sorts the plugins. Not in the book: it covers what the book's ``Trainer`` does not
    (checkpoints, devices, progress).
    """

    order = 50

    def setup(self, run):
        return run

    def after_chunk(self, run):
        return run

    def close(self, run) -> None:
        pass


class Checkpoint(Plugin):
    """Save the run to ``path`` (``.npz``, no pickle, written atomically) every ``every`` chunks (epochs, with
    :func:`fdl.fit`'s defaults) and at the end; with ``resume=True`` continue from ``path`` if it exists.

    A checkpoint holds the params, optimizer state, carried ``aux`` state, the runs' PRNG keys, the position,
    the histories and the early-stopping values of every run trained together, so that a run stopped after
    chunk k and resumed ends bitwise equal to an uninterrupted run (on the CPU). A file that is not a
    checkpoint of this configuration is refused with :class:`fdl.checkpoint.CheckpointError` and left
    untouched: another model or optimizer, another number of runs, another batch size, or a position past
    the end of this run (the message names both lengths).

    Stored arrays keep their shapes and dtypes (see :func:`fdl.checkpoint.save`).

    Raises:
      ValueError: at construction, ``every`` not a positive integer.
      CheckpointError: in ``setup`` with ``resume=True``, a file at ``path`` that does not fit this run (a
        ``ValueError`` subclass).
    """

    order = 10

    def __init__(self, path, *, every: int = 1, resume: bool = False):
        expect_positive(every, "Checkpoint every", integer=True)
        self.path, self.every, self.resume = Path(path), every, resume

    def setup(self, run):
        if not (self.resume and self.path.exists()):
            return run
        like = run.state
        one = _one_run(run)
        state = ckpt.load(self.path, params_like=one(like.params), opt_state_like=one(like.opt_state),
                          trees_like={"run": one((like.aux, run.stopping, run.reached))})
        extra = state["extra"]
        if "run" not in state["trees"] or extra.get("labels") is None:
            raise ckpt.CheckpointError(f"{self.path}: written by an older fdl trainer (no early-stopping values); "
                                       "move it away to start afresh")
        self._check(run, extra, state["epoch"])
        back = _stack_one if one is not _same else _same
        state.update(params=back(state["params"]), opt_state=back(state["opt_state"]))
        aux, stopping, reached = back(state["trees"]["run"])
        histories = tuple(dataclasses.replace(h, train_loss=list(saved["train_loss"]), evals=list(saved["evals"]),
                                              stopped=saved["stopped"])
                          for h, saved in zip(run.histories, extra["histories"], strict=True))
        run = run._replace(state=like._replace(params=state["params"], opt_state=state["opt_state"], aux=aux),
                           stopping=stopping, reached=np.asarray(reached), key=state["key"], done=state["epoch"],
                           histories=histories)
        run.log(f"Resuming from {self.path} after {run.unit} {run.position()}")
        return run

    def _check(self, run, extra: dict, done: int) -> None:
        """Refuse a checkpoint that does not continue this run."""
        if list(extra["labels"]) != list(run.labels):
            raise ckpt.CheckpointError(f"{self.path}: a checkpoint of {len(extra['labels'])} run(s) "
                                       f"{extra['labels']}, not of this run's {list(run.labels)}; resume with the "
                                       "same seeds and sweep, or move the file away to start afresh")
        if extra.get("batch_size") != run.batch_size:
            raise ckpt.CheckpointError(f"{self.path}: written with batch_size {extra.get('batch_size')}, this run "
                                       f"has batch_size {run.batch_size} (its position counts batches of the old "
                                       f"size); resume with batch_size={extra.get('batch_size')}, or move the file "
                                       "away to start afresh")
        if done > len(run.schedule):
            saved, end = extra.get("position"), run.position(len(run.schedule))
            raise ckpt.CheckpointError(
                f"{self.path}: the checkpoint is after {run.unit} {saved}, past the end of this run ({run.unit} "
                f"{end}); resume a run at least that long (e.g. epochs={saved}), or use another path")

    def after_chunk(self, run):
        if run.done % self.every and run.done != len(run.schedule):
            return run
        histories = [{"train_loss": h.train_loss, "evals": h.evals, "stopped": h.stopped} for h in run.histories]
        one = _one_run(run)
        ckpt.save(self.path, params=one(run.state.params), opt_state=one(run.state.opt_state), key=run.key,
                  epoch=run.done, extra={"labels": list(run.labels), "batch_size": run.batch_size,
                                         "chunks": len(run.schedule), "position": run.position(),
                                         "histories": histories,
                                         "trees": {"run": one((run.state.aux, run.stopping, run.reached))}})
        return run


def _same(tree):
    return tree


def _one_run(run):
    """One run's checkpoint stores its arrays without the run axis (as fdl 0.2 did: ``load_params``-able)."""
    if run.labels != ("",):
        return _same
    return lambda tree: jax.tree.map(lambda a: np.asarray(a)[0], tree)


def _stack_one(tree):
    return jax.tree.map(lambda a: np.asarray(a)[None], tree)


class DataParallel(Plugin):
    """Data-parallel training over ``devices`` (``"all"``, a platform name such as ``"cpu"`` or ``"gpu"``, a
    count, or a list of devices): a one-axis mesh (:mod:`fdl.parallel`); each batch is split along it, params,
    optimizer state and data are replicated, and XLA inserts the gradient reductions. The batch size must
    divide evenly among the devices (ValueError otherwise).

    Not in the book. Shapes and dtypes are unchanged; the batch axis (axis 0) is split over the mesh.

    Raises:
      ValueError: at construction, a platform with no devices here, more devices than there are, or none;
        in ``setup``, a batch size the number of devices does not divide.
      TypeError: at construction, ``devices`` of another kind (see :func:`fdl.parallel.make_mesh`).
    """

    order = 20

    def __init__(self, devices="all"):
        self.mesh = parallel.make_mesh(devices)  # refuse a bad device spec now, not at fit time

    def setup(self, run):
        if run.batch_size is not None:
            parallel.check_divisible(run.batch_size, self.mesh)
        rep = parallel.replicated(self.mesh)
        data, state, stopping, key = jax.device_put((run.data, run.state, run.stopping, run.key), rep)
        constraint = parallel.batch_constraint(self.mesh, batch_axis=0)
        return run._replace(data=data, state=state, stopping=stopping, key=key,
                            shard=lambda batch: jax.tree.map(constraint, batch))


class Progress(Plugin):
    """A progress bar over the chunks (tqdm, the ``progress`` extra) with the running training loss; without
    tqdm, one plain line per chunk through the run's log (and a note saying how to get the bar).

    Not in the book (its ``Trainer`` prints only at evaluations). Raises nothing itself; a missing tqdm is
    not an error.
    """

    order = 30

    def setup(self, run):
        self.total, self.bar = len(run.schedule), None
        try:
            from tqdm.auto import tqdm
        except ImportError:
            if os.environ.get("FDL_PROGRESS_NOTED") != "1":  # say it once per process, not once per fit
                run.log("progress: tqdm is not installed (pip install 'fdl[progress]'); printing a line per "
                        f"{run.unit} instead")
                os.environ["FDL_PROGRESS_NOTED"] = "1"
            return run
        self.bar = tqdm(total=self.total, initial=run.done, unit="chunk" if run.unit == "step" else "epoch",
                        leave=False)
        return run

    def after_chunk(self, run):
        losses = [h.train_loss[-1] for h in run.histories if h.train_loss]
        value = sum(losses) / len(losses) if losses else math.nan  # the mean over the runs trained together
        if self.bar is None:
            run.log(f"{run.unit} {run.position()}/{run.position(self.total)}: train loss {value:.4f}")
        else:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{value:.4f}")
        return run

    def close(self, run) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
