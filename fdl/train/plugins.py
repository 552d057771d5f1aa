"""Optional pieces that plug into :func:`fdl.train.train` (and so :func:`fdl.fit`): checkpoints, several
devices, a progress bar.

A plugin is any object with three methods, each given the :class:`~fdl.train.Run` in progress (a value):

* ``setup(run) -> run``: before the first chunk; may return a run with another ``state``, ``data``, ``key``,
  ``stopping``, ``done`` (to resume) or ``shard`` (to split batches over devices);
* ``after_chunk(run) -> run``: after every chunk in which some run trained (and its evaluation);
* ``close(run)``: at the end, also after an error.

``setup`` and ``after_chunk`` return the run, unchanged or as ``run._replace(...)``. What a hook raises stops
the training (``close`` still runs). Plugins run in the order of their ``order`` attribute (default 50):
:class:`Checkpoint` (10) restores before :class:`DataParallel` (20) places the state on the devices;
:class:`Progress` (30) comes last. Not in the book.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import zlib
from pathlib import Path

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from .. import checkpoint as ckpt
from .. import parallel
from .._checks import expect_positive


class Plugin:
    """Base class whose hooks return the run unchanged (subclass it, or write any object with the three
    methods; see the module docstring)."""

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

    A checkpoint holds the params, optimizer state, carried ``aux``, the runs' PRNG keys, the position, the
    histories and the early-stopping values of every run trained together, so that a resumed run continues
    as the uninterrupted one (arrays keep their shapes and dtypes: :func:`fdl.checkpoint.save`). With several
    processes, process 0 alone writes and reads the file (only its disk need hold it) and sends the contents
    to the others; every process waits for the write.

    Raises:
      ValueError: at construction, ``every`` not a positive integer.
      CheckpointError: in ``setup`` with ``resume=True``, a file at ``path`` that does not fit this run
        (another model, optimizer, number of runs or batch size, or a position past this run's end); the file
        is left untouched.
    """

    order = 10

    def __init__(self, path, *, every: int = 1, resume: bool = False):
        expect_positive(every, "Checkpoint every", integer=True)
        self.path, self.every, self.resume = Path(path), every, resume

    def setup(self, run):
        if not self.resume:
            return run
        if jax.process_count() > 1:
            return self._setup_processes(run)
        if not self.path.exists():
            return run
        return self._restored(run, self._load(run))

    def _load(self, run) -> dict:
        """The checkpoint's contents, checked against this run (CheckpointError otherwise)."""
        like = run.state
        one = _one_run(run)
        state = ckpt.load(
            self.path,
            params_like=one(like.params),
            opt_state_like=one(like.opt_state),
            trees_like={"run": one((like.aux, run.stopping, run.reached))},
        )
        extra = state["extra"]
        if "run" not in state["trees"] or extra.get("labels") is None:
            raise ckpt.CheckpointError(
                f"{self.path}: written by an older fdl trainer (no early-stopping values); move it away to start afresh"
            )
        self._check(run, extra, state["epoch"])
        return state

    def _restored(self, run, state: dict):
        """The run continued from a checkpoint's contents (:meth:`_load`)."""
        like, extra = run.state, state["extra"]
        back = _stack_one if _one_run(run) is not _same else _same
        state.update(params=back(state["params"]), opt_state=back(state["opt_state"]))
        aux, stopping, reached = back(state["trees"]["run"])
        histories = tuple(
            dataclasses.replace(
                h, train_loss=list(saved["train_loss"]), evals=list(saved["evals"]), stopped=saved["stopped"]
            )
            for h, saved in zip(run.histories, extra["histories"], strict=True)
        )
        run = run._replace(
            state=like._replace(params=state["params"], opt_state=state["opt_state"], aux=aux),
            stopping=stopping,
            reached=np.asarray(reached),
            key=state["key"],
            done=state["epoch"],
            histories=histories,
        )
        run.log(f"Resuming from {self.path} after {run.unit} {run.position()}")
        return run

    def _setup_processes(self, run):
        """Several processes: process 0 reads the checkpoint (its disk alone need hold it) and sends what it
        found (nothing, an error, or the contents, bit for bit) to the others."""
        header, state, error = {"found": False}, None, None
        if parallel.writes():
            try:
                if self.path.exists():
                    state = self._load(run)
                    header = {
                        "found": True,
                        "epoch": state["epoch"],
                        "step": state["step"],
                        "extra": state["extra"],
                        "key_impl": str(jax.random.key_impl(state["key"])),
                    }
            except Exception as e:  # noqa: BLE001 - said to the others first, so that none waits for process 0
                error, header = e, {"error": f"{type(e).__name__}: {e}"}
        header = parallel.broadcast_json(header)
        if error is not None:
            raise error
        if "error" in header:
            raise ckpt.CheckpointError(f"process 0 (which reads the checkpoints): {header['error']}")
        if not header["found"]:
            return run
        one = _one_run(run)
        like = {
            "params": one(run.state.params),
            "opt_state": one(run.state.opt_state),
            "run": one((run.state.aux, run.stopping, run.reached)),
            "key": jax.random.key_data(run.key),
        }
        if state is not None:
            like = {
                "params": state["params"],
                "opt_state": state["opt_state"],
                "run": state["trees"]["run"],
                "key": jax.random.key_data(state["key"]),
            }
        got = parallel.broadcast(like)
        state = {
            "params": got["params"],
            "opt_state": got["opt_state"],
            "trees": {"run": got["run"]},
            "key": jax.random.wrap_key_data(got["key"], impl=header["key_impl"]),
            "epoch": header["epoch"],
            "step": header["step"],
            "extra": header["extra"],
        }
        return self._restored(run, state)

    def _check(self, run, extra: dict, done: int) -> None:
        """Refuse a checkpoint that does not continue this run."""
        if list(extra["labels"]) != list(run.labels):
            raise ckpt.CheckpointError(
                f"{self.path}: a checkpoint of {len(extra['labels'])} run(s) "
                f"{extra['labels']}, not of this run's {list(run.labels)}; resume with the "
                "same seeds and sweep, or move the file away to start afresh"
            )
        if extra.get("batch_size") != run.batch_size:
            raise ckpt.CheckpointError(
                f"{self.path}: written with batch_size {extra.get('batch_size')}, this run "
                f"has batch_size {run.batch_size} (its position counts batches of the old "
                f"size); resume with batch_size={extra.get('batch_size')}, or move the file "
                "away to start afresh"
            )
        if done > len(run.schedule):
            saved, end = extra.get("position"), run.position(len(run.schedule))
            raise ckpt.CheckpointError(
                f"{self.path}: the checkpoint is after {run.unit} {saved}, past the end of this run ({run.unit} "
                f"{end}); resume a run at least that long (e.g. epochs={saved}), or use another path"
            )

    def after_chunk(self, run):
        if run.done % self.every and run.done != len(run.schedule):
            return run
        histories = [{"train_loss": h.train_loss, "evals": h.evals, "stopped": h.stopped} for h in run.histories]
        one = _one_run(run)
        if jax.process_count() > 1:  # every process gathers (a collective if an array is split); process 0 writes
            one = lambda tree, _one=one: _one(parallel.to_host(tree))  # noqa: E731
        parts = dict(
            params=one(run.state.params),
            opt_state=one(run.state.opt_state),
            key=run.key,
            epoch=run.done,
            extra={
                "labels": list(run.labels),
                "batch_size": run.batch_size,
                "chunks": len(run.schedule),
                "position": run.position(),
                "histories": histories,
                "trees": {"run": one((run.state.aux, run.stopping, run.reached))},
            },
        )
        if jax.process_count() == 1:
            ckpt.save(self.path, **parts)
        else:  # a barrier too: no process goes on before the file is written, and all stop if it cannot be
            parallel.together(lambda: ckpt.save(self.path, **parts) if parallel.writes() else None)
        return run


def _same(tree):
    return tree


def _one_run(run):
    """One run's checkpoint stores its arrays without the run axis (so that ``load_params`` reads it)."""
    if run.labels != ("",):
        return _same
    return lambda tree: jax.tree.map(lambda a: np.asarray(a)[0], tree)


def _stack_one(tree):
    return jax.tree.map(lambda a: np.asarray(a)[None], tree)


class DataParallel(Plugin):
    """Data-parallel training over ``devices`` (``"all"``, a platform name such as ``"cpu"`` or ``"gpu"``, a
    count, or a list of devices): a one-axis mesh (:mod:`fdl.parallel`).

    ``axis="batch"`` (the default): each batch is split along the mesh; params, optimizer state and data are
    replicated (data from :func:`fdl.parallel.global_rows` stays split by rows). ``axis="runs"``: the runs
    trained together are split over the devices by their leading run axis, each training on whole batches
    (one process only).

    Several processes (``jax.distributed.initialize()`` first): the mesh must hold devices of every process;
    ``setup`` checks by checksums that the processes agree on the data, state, keys, position and mesh, and
    places each process's copy on its own devices.

    Raises:
      ValueError: at construction, an unknown ``axis`` (and :func:`fdl.parallel.make_mesh`'s errors for
        ``devices``); in ``setup``, a batch size (or, with ``axis="runs"``, a number of runs) the devices do
        not divide, or ``axis="runs"`` across processes.
      ProcessMismatch: in ``setup``, processes that disagree (a ValueError).
    """

    order = 20

    def __init__(self, devices="all", *, axis: str = "batch"):
        if axis not in ("batch", "runs"):
            raise ValueError(
                f"DataParallel axis must be 'batch' (split each batch) or 'runs' (split the runs "
                f"trained together), got {axis!r}"
            )
        self.axis = axis
        self.mesh = parallel.make_mesh(devices)  # refuse a bad device spec now, not at fit time

    def setup(self, run):
        several = jax.process_count() > 1
        if self.axis == "runs":
            if several:
                raise ValueError(
                    "DataParallel(axis='runs') runs on one process for now; with several processes use axis='batch'"
                )
            parallel.check_divisible(run.runs, self.mesh, what="the number of runs")
        elif run.batch_size is not None:
            parallel.check_divisible(run.batch_size, self.mesh)
        if several:
            self._agree(run)
        rep = parallel.replicated(self.mesh)
        split = rep if self.axis == "batch" else NamedSharding(self.mesh, PartitionSpec(parallel.AXIS))
        data = parallel.place(run.data, rep)
        state, stopping, key = parallel.place((run.state, run.stopping, run.key), split)
        shard = None
        if self.axis == "batch":
            constraint = parallel.batch_constraint(self.mesh, batch_axis=0)

            def shard(batch):
                return jax.tree.map(constraint, batch)

            # rows split over the devices: gather each step's batch in the step (make_chunk), not the chunk's at once
            shard.gather_ahead = not any(
                parallel.is_global(a) and not a.is_fully_replicated for a in jax.tree.leaves(data)
            )
        eval_data = parallel.place(run.eval_data, rep) if several else run.eval_data
        return run._replace(data=data, state=state, stopping=stopping, key=key, shard=shard, eval_data=eval_data)

    def _agree(self, run) -> None:
        """Several processes: the same data, state, keys, position and mesh on every process, or a message."""
        f = parallel.fingerprint
        position = {
            "done": run.done,
            "reached": np.asarray(run.reached).tolist(),
            "labels": list(run.labels),
            "batch_size": run.batch_size,
            "schedule": [list(c) for c in run.schedule],
        }
        parallel.agree(
            {
                "the devices of the mesh": f([d.id for d in self.mesh.devices.flat]),
                "the training data": f(run.data),
                "the test data": f(run.eval_data),
                "the initial state (params, optimizer state)": f(run.state),
                "the PRNG keys": f(run.key),
                "the position and schedule": zlib.crc32(json.dumps(position).encode()),
                "the early-stopping values": f(None if run.stopping is None else run.stopping._replace(best=None)),
            },
            hint={
                "the devices of the mesh": "build DataParallel the same way on every process (DataParallel('all'))",
                "the training data": "pass the same rows on every process, or each process its own rows through "
                "X, y = fdl.parallel.global_rows((X_mine, y_mine))",
                "the test data": "evaluate every process on the same test set (load it the same way everywhere)",
                "the initial state (params, optimizer state)": "give every process the same seed (and the same "
                "state= to continue a run)",
                "the PRNG keys": "give every process the same seed",
                "the position and schedule": "give every process the same epochs and batch size, and resume them "
                "from one checkpoint (Checkpoint reads it on process 0 and sends it on)",
                "the early-stopping values": "resume every process from one checkpoint",
            },
        )


class Progress(Plugin):
    """A progress bar over the chunks (tqdm, the ``progress`` extra) with the running training loss; without
    tqdm, one line per chunk through the run's log. Drawn by process 0 alone."""

    order = 30

    def setup(self, run):
        self.total, self.bar = len(run.schedule), None
        if not parallel.speaks():  # several processes: process 0 draws the bar (the lines go through run.log)
            return run
        try:
            from tqdm.auto import tqdm
        except ImportError:
            if os.environ.get("FDL_PROGRESS_NOTED") != "1":  # say it once per process, not once per fit
                run.log(
                    "progress: tqdm is not installed (pip install 'fdl[progress]'); printing a line per "
                    f"{run.unit} instead"
                )
                os.environ["FDL_PROGRESS_NOTED"] = "1"
            return run
        self.bar = tqdm(
            total=self.total, initial=run.done, unit="chunk" if run.unit == "step" else "epoch", leave=False
        )
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
