"""Optional pieces that plug into :func:`fdl.train.train` (and so :func:`fdl.fit`): checkpoints, several
devices, a progress bar.

A plugin is any object with three methods, each given the :class:`~fdl.train.fit.Run` in progress:

* ``setup(run)``: before the first chunk; may replace ``run.state``, ``run.data``, ``run.key``,
  ``run.done`` (to resume) and ``run.shard`` (to split batches over devices);
* ``after_chunk(run)``: after every chunk that finished with finite values (and its evaluation);
* ``close(run)``: at the end, also after an error.

Plugins run in the order of their ``order`` attribute: :class:`Checkpoint` (10) restores before
:class:`DataParallel` (20) places the restored state on the devices; :class:`Progress` (30) comes last.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import jax

from .. import checkpoint as ckpt
from .. import parallel
from .._checks import expect_positive


class Plugin:
    """Base class with do-nothing hooks (subclass it, or write any object with the three methods).

    Each hook takes the :class:`~fdl.train.fit.Run` and returns None; what a plugin raises in a hook stops
    the run (``close`` still runs). ``order`` (an int, default 50) sorts the plugins. Not in the book: it
    covers what the book's ``Trainer`` does not (checkpoints, devices, progress).
    """

    order = 50

    def setup(self, run) -> None:
        pass

    def after_chunk(self, run) -> None:
        pass

    def close(self, run) -> None:
        pass


class Checkpoint(Plugin):
    """Save the run to ``path`` (``.npz``, no pickle, written atomically) every ``every`` chunks (epochs, with
    :func:`fdl.fit`'s defaults) and at the end; with ``resume=True`` continue from ``path`` if it exists.

    A checkpoint holds the params, optimizer state, carried ``aux`` state, the run's PRNG key, the position,
    the history and the early-stopping state, so that a run stopped after chunk k and resumed ends bitwise
    equal to an uninterrupted run (on the CPU). A checkpoint of another model, or a file that is not one, is
    refused with :class:`fdl.checkpoint.CheckpointError` and left untouched.

    Stored arrays keep their shapes and dtypes (see :func:`fdl.checkpoint.save`).

    Raises:
      ValueError: at construction, ``every`` not a positive integer.
      CheckpointError: in ``setup`` with ``resume=True``, a file at ``path`` that is not a checkpoint of this
        run's model and optimizer (a ``ValueError`` subclass).
    """

    order = 10

    def __init__(self, path, *, every: int = 1, resume: bool = False):
        expect_positive(every, "Checkpoint every", integer=True)
        self.path, self.every, self.resume = Path(path), every, resume

    def setup(self, run) -> None:
        if not (self.resume and self.path.exists()):
            return
        like = run.state
        trees_like = {"best_params": like.params, "best_state": like.opt_state}
        if like.aux is not None:
            trees_like.update(aux=like.aux, best_aux=like.aux)
        state = ckpt.load(self.path, params_like=like.params, opt_state_like=like.opt_state, trees_like=trees_like)
        extra, trees = state["extra"], state["trees"]
        aux = trees.get("aux", like.aux)
        run.state = like._replace(params=state["params"], opt_state=state["opt_state"], aux=aux)
        run.key, run.done = state["key"], state["epoch"]
        run.steps = sum(c.steps for c in run.schedule[:run.done])
        run.best_loss = math.inf if extra["best_loss"] is None else extra["best_loss"]
        run.best_done = extra["best_epoch"]
        run.best_steps = sum(c.steps for c in run.schedule[:run.best_done])
        run.best_state = like._replace(params=trees.get("best_params", run.state.params),
                                       opt_state=trees.get("best_state", run.state.opt_state),
                                       aux=trees.get("best_aux", aux))
        run.history.train_loss, run.history.evals = list(extra["train_loss"]), list(extra["evals"])
        run.log(f"Resuming from {self.path} after {run.unit} {run.position()}")

    def after_chunk(self, run) -> None:
        if run.done % self.every and run.done != len(run.schedule):
            return
        trees = {"best_params": run.best_state.params, "best_state": run.best_state.opt_state}
        if run.state.aux is not None:
            trees.update(aux=run.state.aux, best_aux=run.best_state.aux)
        ckpt.save(self.path, params=run.state.params, opt_state=run.state.opt_state, key=run.key, epoch=run.done,
                  extra={"best_loss": run.best_loss if math.isfinite(run.best_loss) else None,
                         "best_epoch": run.best_done, "train_loss": run.history.train_loss,
                         "evals": run.history.evals, "trees": trees})


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

    def setup(self, run) -> None:
        if run.batch_size is not None:
            parallel.check_divisible(run.batch_size, self.mesh)
        rep = parallel.replicated(self.mesh)
        run.data, run.state = jax.device_put((run.data, run.state), rep)
        run.best_state = run.state if run.done == 0 else jax.device_put(run.best_state, rep)
        constraint = parallel.batch_constraint(self.mesh, batch_axis=0)
        run.shard = lambda batch: jax.tree.map(constraint, batch)


class Progress(Plugin):
    """A progress bar over the chunks (tqdm, the ``progress`` extra) with the running training loss; without
    tqdm, one plain line per chunk through the run's log (and a note saying how to get the bar).

    Not in the book (its ``Trainer`` prints only at evaluations). Raises nothing itself; a missing tqdm is
    not an error.
    """

    order = 30

    def setup(self, run) -> None:
        self.total, self.bar = len(run.schedule), None
        try:
            from tqdm.auto import tqdm
        except ImportError:
            if os.environ.get("FDL_PROGRESS_NOTED") != "1":  # say it once per process, not once per fit
                run.log("progress: tqdm is not installed (pip install 'fdl[progress]'); printing a line per "
                        f"{run.unit} instead")
                os.environ["FDL_PROGRESS_NOTED"] = "1"
            return
        self.bar = tqdm(total=self.total, initial=run.done, unit="chunk" if run.unit == "step" else "epoch",
                        leave=False)

    def after_chunk(self, run) -> None:
        value = run.history.train_loss[-1]
        if self.bar is None:
            run.log(f"{run.unit} {run.position()}/{run.position(self.total)}: train loss {value:.4f}")
        else:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{value:.4f}")

    def close(self, run) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
