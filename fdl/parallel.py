"""Data-parallel training on several devices with ``jax.sharding`` (no hand-written collectives), on one process
or on several (several hosts).

A one-axis :class:`~jax.sharding.Mesh` named ``"batch"`` spans the devices; every training batch is sharded
along it, params, optimizer state and data are replicated, and XLA inserts the reductions of the gradients.
The mesh axis is of the ``Auto`` type so that hand-written VJPs (whose weight gradients contract over the
sharded batch axis, e.g. ``x.T @ g``) are partitioned by XLA like any other computation. Runs trained together
(``fit(..., seed=[...])``) can instead be split over the mesh by their run axis
(``DataParallel("all", axis="runs")``): runs need no communication.

On one host, simulate devices on the CPU with ``XLA_FLAGS=--xla_force_host_platform_device_count=8``
(set before jax starts).

**Several processes** (several hosts, or several processes on one machine): every process runs the same
script, and the first thing it does, before it builds a mesh, a :class:`~fdl.train.DataParallel` or any jax
array, is ``jax.distributed.initialize()`` (on SLURM, Open MPI and Kubernetes jobs with nothing else; elsewhere
``jax.distributed.initialize("host0:1234", num_processes=P, process_id=i)``). Then ``jax.devices()`` lists every
process's devices and ``DataParallel("all")`` spans them; a mesh that leaves out some process's devices
(a count, ``jax.local_devices()``) is refused. Each process may pass the whole training set (the same rows on
every process) or only its own rows, turned into one global array by :func:`global_rows`; the test data is the
same on every process. :class:`~fdl.train.DataParallel` checks, cheaply (a checksum per item, gathered once),
that the processes agree on the data, the state, the keys and the position (:class:`ProcessMismatch`
otherwise). Only process 0 logs (:func:`log_from_every_process` to hear every process) and writes checkpoints;
a resumed checkpoint is read on process 0 and sent to the others.
"""

from __future__ import annotations

import json
import os
import sys
import zlib

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "batch"


def make_mesh(devices="all") -> Mesh:
    """A one-axis data-parallel mesh over ``devices``.

    ``devices``: ``"all"`` (every device of the default backend, of every process), a platform name (``"cpu"``,
    ``"gpu"``, ``"tpu"``: every device of that platform), a count ``n`` (the first ``n`` devices), or a
    sequence of ``jax.Device``. Not in the book (it trains on one CPU).

    Returns:
      A ``jax.sharding.Mesh`` with one axis named ``"batch"`` (``AXIS``) of ``Auto`` type.

    Raises:
      ValueError: a platform jax does not see here, a count outside ``[1, len(jax.devices())]``, or an
        empty list; with several processes (``jax.distributed.initialize``), devices that leave out some
        process (a count below every process's devices, ``jax.local_devices()``): every process trains, so
        every process must have devices in the mesh.
      TypeError: a bool, anything other than a string, an int or a list/tuple, or a list holding something
        other than ``jax.Device`` objects.
    """
    if isinstance(devices, str):
        if devices == "all":
            devices = jax.devices()
        else:
            try:
                devices = jax.devices(devices)
            except RuntimeError as e:
                raise ValueError(f"devices={devices!r}: no such platform here ({e}); use 'all', a platform "
                                 f"that jax sees ({jax.default_backend()!r}), a count or a list of devices") from None
    elif isinstance(devices, bool) or not isinstance(devices, int | list | tuple):
        raise TypeError(f"devices must be 'all', a platform name, a count or a list of jax devices, got {devices!r}")
    elif isinstance(devices, int):
        available = jax.devices()
        if not 0 < devices <= len(available):
            raise ValueError(f"asked for {devices} devices, {len(available)} available ({available[0].platform}); "
                             "on the CPU set XLA_FLAGS=--xla_force_host_platform_device_count=N before importing jax")
        devices = available[:devices]
    devices = list(devices)
    if any(not isinstance(d, jax.Device) for d in devices):
        raise TypeError(f"devices: expected jax.Device objects (from jax.devices()), got {devices!r}")
    if not devices:
        raise ValueError("data parallelism needs at least one device")
    _check_every_process(devices)
    return Mesh(np.array(devices), (AXIS,), axis_types=(jax.sharding.AxisType.Auto,))


def _check_every_process(devices) -> None:
    """Several processes train one model together: a mesh must hold devices of every process."""
    count = jax.process_count()
    if count == 1:
        return
    missing = sorted(set(range(count)) - {d.process_index for d in devices})
    if missing:
        mine = all(d.process_index == jax.process_index() for d in devices)
        raise ValueError(
            f"the mesh of {len(devices)} device(s) leaves out process(es) {missing} of the {count} processes that "
            "jax.distributed.initialize() joined"
            + (" (it holds this process's devices only: each process would train a model of its own)" if mine else "")
            + "; every process runs fit and must have devices in the mesh: use DataParallel('all') (every "
            "process's devices, as jax.devices() lists them), or a list with devices of every process")


def replicated(mesh: Mesh) -> NamedSharding:
    """The sharding that keeps a full copy of an array on every device of ``mesh`` (params, optimizer state).

    Any shape and dtype; ``jax.device_put(tree, replicated(mesh))`` places a whole pytree. Raises nothing itself.
    """
    return NamedSharding(mesh, PartitionSpec())


def batch_sharding(mesh: Mesh, batch_axis: int = 0) -> NamedSharding:
    """Arrays split along ``batch_axis`` over the mesh, replicated along the others.

    For arrays of rank > ``batch_axis`` whose ``batch_axis`` length the number of devices divides (otherwise jax
    refuses to place the array with it); shapes and dtypes are unchanged. Raises
    nothing itself.
    """
    return NamedSharding(mesh, PartitionSpec(*([None] * batch_axis), AXIS))


def batch_constraint(mesh: Mesh, batch_axis: int = 0):
    """A function that constrains an array to be sharded along ``batch_axis`` over the mesh (inside ``jit``).

    The function returns its argument unchanged in value, shape and dtype (``jax.lax.with_sharding_constraint``
    with :func:`batch_sharding`); jax raises if the array's ``batch_axis`` does not divide among the devices.
    """
    sharding = batch_sharding(mesh, batch_axis)
    return lambda x: jax.lax.with_sharding_constraint(x, sharding)


def check_divisible(batch_size: int, mesh: Mesh, what: str = "batch_size") -> None:
    """Check that ``batch_size`` splits evenly over the devices of ``mesh``.

    Raises:
      ValueError: ``batch_size`` is not a multiple of the number of devices; the message suggests one.
    """
    n = mesh.devices.size
    if batch_size % n:
        raise ValueError(f"{what} {batch_size} must be divisible by the {n} devices of the mesh for data "
                         f"parallelism (e.g. {batch_size - batch_size % n or n})")


# ----------------------------------------------------------------------------------------------- several processes

class ProcessMismatch(ValueError):
    """The processes of one training job disagree on something they must share (the data, the state, the keys,
    the position, the mesh); raised on every process alike, naming what differs and what to do, instead of
    JAX's assertion or a hang. A ``ValueError`` subclass. Not in the book (it trains in one process)."""


_EVERY_PROCESS = [os.environ.get("FDL_LOG_EVERY_PROCESS") == "1"]


def log_from_every_process(on: bool = True) -> None:
    """Let every process of a multi-process job log (each line prefixed ``[process i]``), not only process 0.

    The default is process 0 alone (one voice); ``FDL_LOG_EVERY_PROCESS=1`` in the environment turns this on
    too. Progress bars stay on process 0. Raises nothing.
    """
    _EVERY_PROCESS[0] = bool(on)


def speaks() -> bool:
    """Whether this process logs: always with one process; with several, process 0 (or every process after
    :func:`log_from_every_process`)."""
    return jax.process_count() == 1 or jax.process_index() == 0 or _EVERY_PROCESS[0]


def writes() -> bool:
    """Whether this process writes the job's files (checkpoints, ``results.json``): process 0, or the only
    process (asked without starting jax's devices when ``jax.distributed`` was never initialized)."""
    return not jax.distributed.is_initialized() or jax.process_index() == 0


def voice(log):
    """``log`` as this process should use it: unchanged with one process; with several, ``log`` on process 0
    and ``None`` (silence) elsewhere, or ``log`` with a ``[process i]`` prefix on every process after
    :func:`log_from_every_process`."""
    if log is None or jax.process_count() == 1:
        return log
    if _EVERY_PROCESS[0]:
        index = jax.process_index()
        return lambda message, *a, **k: log(f"[process {index}] {message}", *a, **k)
    return log if jax.process_index() == 0 else None


def is_global(x) -> bool:
    """Whether ``x`` is a jax array laid out over several devices (e.g. by :func:`global_rows`), as opposed to
    host data or an array on one device."""
    return isinstance(x, jax.Array) and len(x.sharding.device_set) > 1


def spans_processes(x) -> bool:
    """Whether ``x`` is a jax array with devices of other processes (this process cannot read all of it)."""
    return isinstance(x, jax.Array) and not x.is_fully_addressable


def global_rows(tree, mesh: Mesh | None = None):
    """Each process's own rows, as global arrays of every process's rows split over ``mesh`` by rows.

    For a job of several processes in which no process holds the whole training set: every process calls
    ``X, y = global_rows((X_mine, y_mine))`` with its own rows and passes the result to ``fit`` (with
    ``DataParallel`` over the same devices); the global arrays hold process 0's rows first, then process 1's,
    ... (the order of the mesh's devices). With one process it splits the rows over the devices. Built with
    ``jax.make_array_from_process_local_data`` (nothing is sent between processes but a few numbers).

    Args:
      tree: an array, or a pytree of arrays (e.g. ``(X, y)``), each with this process's rows on axis 0.
      mesh: the devices (default: every device, :func:`make_mesh` ``("all")``).

    Returns:
      The same pytree of jax arrays, each ``(rows of every process, ...)``, sharded along axis 0
      (:func:`batch_sharding`); dtypes as jax stores them (float64 becomes float32 without ``jax_enable_x64``).

    Raises:
      ValueError: leaves of different row counts, or a row count that this process's devices in the mesh do not
        divide (the message says how many rows to drop), or a mesh whose processes have different numbers of
        devices.
      ProcessMismatch: processes with different row counts, trailing shapes or dtypes (on every process).
    """
    mesh = make_mesh("all") if mesh is None else mesh
    leaves, treedef = jax.tree.flatten(tree)
    leaves = [np.asarray(a) for a in leaves]
    leaves = [np.asarray(a, dtype=jax.dtypes.canonicalize_dtype(a.dtype)) for a in leaves]
    me = jax.process_index()
    per_process = {}
    for d in mesh.devices.flat:
        per_process[d.process_index] = per_process.get(d.process_index, 0) + 1

    def check():
        if len(set(per_process.values())) > 1:
            raise ValueError(f"global_rows: the mesh gives the processes different numbers of devices "
                             f"({per_process}); use a mesh with as many devices of every process")
        if not leaves or any(a.ndim == 0 for a in leaves):
            raise ValueError("global_rows: give arrays with a leading row axis")
        rows = {len(a) for a in leaves}
        if len(rows) > 1:
            raise ValueError(f"global_rows: the arrays have different numbers of rows {sorted(rows)} on process {me}")
        n, k = len(leaves[0]), per_process.get(me, 0)
        if k == 0:
            raise ValueError(f"global_rows: the mesh has no device of process {me}; use make_mesh('all')")
        if n == 0 or n % k:
            raise ValueError(f"global_rows: process {me} has {n} rows, which its {k} device(s) of the mesh cannot "
                             f"share evenly; give every process a multiple of {k} rows (e.g. drop the last "
                             f"{n % k or k})" if n else f"global_rows: process {me} has no rows")

    together(check)
    shapes = json.dumps([[list(a.shape), str(a.dtype)] for a in leaves])
    agree({"the number of rows": len(leaves[0]), "the rows' shapes and dtypes": zlib.crc32(
        json.dumps([[list(a.shape[1:]), str(a.dtype)] for a in leaves]).encode())},
        hint="give every process the same number of rows (trim every process to the smallest count) of arrays "
             "of the same trailing shape and dtype", details=shapes)
    sharding = batch_sharding(mesh)
    return treedef.unflatten([jax.make_array_from_process_local_data(sharding, a) for a in leaves])


def local_rows(x) -> np.ndarray:
    """This process's rows of a global array (its addressable shards, in row order) as a NumPy array; any other
    array as ``np.asarray(x)``."""
    if not spans_processes(x):
        return np.asarray(x)
    if x.is_fully_replicated:
        return np.asarray(x.addressable_data(0))
    shards = {}
    for s in x.addressable_shards:
        start = (s.index[0].start or 0) if s.index else 0
        shards.setdefault(start, s.data)
    return np.concatenate([np.asarray(shards[k]) for k in sorted(shards)])


def check_global_rows(X, y, check, what: str = "fit"):
    """``fit``'s checks of training or test data given as global arrays (:func:`global_rows`).

    The shapes are checked on the global arrays (``n`` is every process's rows); ``check(X_rows, y_rows)``
    (e.g. finiteness) runs on each process's own rows, through :func:`together`, so that every process
    stops if one finds a fault. Returns ``(X, y)`` unchanged.

    Raises:
      TypeError: one of ``X`` and ``y`` global and the other not.
      ValueError: different row counts, or arrays on different devices; and what ``check`` raises.
    """
    for name, a in (("X", X), ("y", y)):
        if not is_global(a):
            raise TypeError(f"{what}: {name} is not laid out over the devices like the other (a global array); give "
                            "both as fdl.parallel.global_rows((X, y)) makes them, or both as host arrays")
    if X.ndim == 0 or y.ndim == 0 or X.shape[0] != y.shape[0]:
        raise ValueError(f"{what}: X {X.shape} and y {y.shape} need the same number of rows")
    if X.sharding.device_set != y.sharding.device_set:
        raise ValueError(f"{what}: X and y lie on different devices; make them with one global_rows call")
    together(check, local_rows(X), local_rows(y))
    return X, y


def to_host(tree):
    """A pytree's arrays as NumPy arrays, whole, on every process (a gather across processes for an array split
    over them: call it on every process at once). Typed PRNG keys are left as they are."""
    def one(a):
        if not isinstance(a, jax.Array) or jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
            return a
        if not a.is_fully_addressable and not a.is_fully_replicated:
            from jax.experimental import multihost_utils
            return np.asarray(multihost_utils.process_allgather(a, tiled=True))
        return np.asarray(a)

    return jax.tree.map(one, tree)


def together(check, *args, **kwargs):
    """``check(*args, **kwargs)`` on every process, failing on every process if it fails on any.

    With one process, a plain call. With several, each process calls ``check`` (on its own rows, say); then
    the processes exchange whether it raised: the process that raised re-raises its exception, the others raise
    one of the same class (when it takes a message) with its message, prefixed ``process i:``, so that no
    process trains on while another has stopped (a hang in the next collective). Also a barrier. Returns what
    ``check`` returned.
    """
    if jax.process_count() == 1:
        return check(*args, **kwargs)
    error, result = None, None
    try:
        result = check(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - sent to the other processes, then raised again
        error = e
    message = b"" if error is None else json.dumps(
        [type(error).__module__, type(error).__qualname__, str(error)]).encode()[:_MESSAGE - 1]
    buffer = np.zeros(_MESSAGE, np.uint8)
    buffer[0] = error is not None
    buffer[1:1 + len(message)] = np.frombuffer(message, np.uint8)
    gathered = _allgather(buffer)
    if error is not None:
        raise error
    for p, row in enumerate(gathered):
        if row[0]:
            module, name, text = json.loads(bytes(row[1:]).rstrip(b"\0").decode())
            raise _exception(module, name, f"process {p}: {text}")
    return result


_MESSAGE = 4096


def _exception(module: str, name: str, text: str) -> Exception:
    cls = getattr(sys.modules.get(module), name, None)
    if isinstance(cls, type) and issubclass(cls, Exception):
        try:
            return cls(text)
        except Exception:  # noqa: BLE001 - an exception that does not take a message
            pass
    return RuntimeError(text)


def _allgather(a: np.ndarray) -> np.ndarray:
    from jax.experimental import multihost_utils
    return np.asarray(multihost_utils.process_allgather(a))


def fingerprint(tree) -> int:
    """A CRC-32 of a pytree's structure, shapes, dtypes and contents (a uint32 as a Python int).

    Host arrays and arrays on this process's devices are read whole; an array split over processes counts by
    its shape, dtype and layout only (its rows differ from process to process by design). Typed PRNG keys count
    by their key data. Raises nothing of its own.
    """
    crc = zlib.crc32(str(jax.tree.structure(tree)).encode())
    for leaf in jax.tree.leaves(tree):
        if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        if spans_processes(leaf) and not leaf.is_fully_replicated:
            crc = zlib.crc32(f"{leaf.shape}{leaf.dtype}{leaf.sharding.spec}".encode(), crc)
            continue
        a = np.asarray(local_rows(leaf) if isinstance(leaf, jax.Array) else leaf, order="C")
        crc = zlib.crc32(f"{a.shape}{a.dtype}".encode(), crc)
        crc = zlib.crc32(a.reshape(-1).view(np.uint8), crc)
    return crc


def agree(items: dict, hint: str | dict = "", details: str = "") -> None:
    """Check that every process holds the same values: ``items`` maps names to ints (e.g. :func:`fingerprint`
    values), gathered from every process at once (one small collective).

    With one process, nothing. ``hint`` says what to do (one string, or one per name); ``details`` (this
    process's, e.g. shapes) is added to the message.

    Raises:
      ProcessMismatch: on every process alike, when some value differs between processes; the message names
        what differs, the groups of processes that agree (``processes 0 | 1``), and what to do.
    """
    if jax.process_count() == 1 or not items:
        return
    names = list(items)
    values = np.array([int(items[k]) % 2**32 for k in names], np.uint32)
    gathered = _allgather(values)
    differ = [i for i in range(len(names)) if len(set(gathered[:, i].tolist())) > 1]
    if not differ:
        return
    lines = []
    for i in differ:
        groups: dict[int, list[int]] = {}
        for p, v in enumerate(gathered[:, i].tolist()):
            groups.setdefault(v, []).append(p)
        split = " | ".join(", ".join(map(str, ps)) for ps in groups.values())
        what = hint.get(names[i], "") if isinstance(hint, dict) else hint
        lines.append(f"{names[i]} (processes {split})" + (f": {what}" if what else ""))
    raise ProcessMismatch("the processes of this job disagree on " + "; and on ".join(lines)
                          + (f" (process {jax.process_index()}: {details})" if details else ""))


def broadcast(tree):
    """Process 0's values of a pytree of arrays, bit for bit, on every process (NumPy arrays).

    Every process passes a tree of the same structure, shapes and dtypes (the others' values are not read), e.g.
    freshly initialised params on the processes that have no checkpoint. With one process, the tree as NumPy
    arrays. One collective over the bytes of all leaves. Raises nothing of its own.
    """
    leaves, treedef = jax.tree.flatten(tree)
    leaves = [np.asarray(a, order="C") for a in leaves]
    if jax.process_count() == 1:
        return treedef.unflatten(leaves)
    flat = [a.reshape(-1).view(np.uint8) for a in leaves]
    sizes = [len(b) for b in flat]
    data = np.concatenate(flat + [np.zeros(-sum(sizes) % 4, np.uint8)]) if flat else np.zeros(0, np.uint8)
    got = _broadcast_uint32(data.view(np.uint32)).view(np.uint8)
    out, at = [], 0
    for a, size in zip(leaves, sizes, strict=True):
        out.append(got[at:at + size].view(a.dtype).reshape(a.shape).copy())
        at += size
    return treedef.unflatten(out)


def _broadcast_uint32(words: np.ndarray) -> np.ndarray:
    from jax.experimental import multihost_utils
    if words.size == 0:
        return words
    return np.asarray(multihost_utils.broadcast_one_to_all(words)).astype(np.uint32)


def broadcast_json(value):
    """Process 0's JSON-serialisable ``value`` on every process (the others pass anything, e.g. ``None``)."""
    if jax.process_count() == 1:
        return value
    data = json.dumps(value).encode() if jax.process_index() == 0 else b""
    size = int(_broadcast_uint32(np.array([len(data)], np.uint32))[0])
    buffer = np.zeros(size + (-size % 4), np.uint8)
    buffer[:len(data)] = np.frombuffer(data, np.uint8)
    return json.loads(bytes(_broadcast_uint32(buffer.view(np.uint32)).view(np.uint8)[:size]).decode())


def place(tree, sharding: NamedSharding):
    """Put a pytree's arrays on ``sharding``'s devices, on one process or several.

    An array already laid out over the same devices (e.g. by :func:`global_rows`) is kept as it is. With one
    process, the others go through ``jax.device_put``. With several, each process places its own copy of a
    host value on its devices (``jax.make_array_from_process_local_data``: nothing is sent between processes;
    :func:`agree` beforehand checks that the copies are equal). Typed PRNG keys are placed by their key data.

    Raises:
      ValueError: an array laid out over other devices than the mesh's, across processes (JAX cannot move it).
    """
    devices = sharding.device_set

    def one(a):
        if isinstance(a, jax.Array) and is_global(a):
            if a.sharding.device_set == devices:
                return a
            if spans_processes(a):
                raise ValueError(f"an array of shape {a.shape} lies on other devices ({len(a.sharding.device_set)}) "
                                 f"than the mesh's ({len(devices)}); build it (global_rows) with the same mesh as "
                                 "DataParallel")
        if jax.process_count() == 1:
            return jax.device_put(a, sharding)
        if isinstance(a, jax.Array) and jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
            impl = jax.random.key_impl(a)
            return jax.random.wrap_key_data(one(jax.random.key_data(a)), impl=impl)
        a = np.asarray(a)
        return jax.make_array_from_process_local_data(sharding, a, a.shape)

    return jax.tree.map(one, tree)


def barrier(name: str) -> None:
    """Wait until every process has reached this point (nothing with one process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices(name)
