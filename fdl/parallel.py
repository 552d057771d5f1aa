"""Data-parallel training on several devices with ``jax.sharding`` (no hand-written collectives), on one process
or on several.

A one-axis :class:`~jax.sharding.Mesh` named ``"batch"`` (of ``Auto`` type, so that XLA partitions the
hand-written VJPs too) spans the devices; each batch is sharded along it, params, optimizer state and data
are replicated, and XLA inserts the gradient reductions. Runs trained together can instead be split by their
run axis (``DataParallel("all", axis="runs")``). Simulate devices on a CPU with
``XLA_FLAGS=--xla_force_host_platform_device_count=8``. With several processes, each calls
``jax.distributed.initialize()`` first; ``docs/api/parallel.md`` describes the rest (agreement checks, one
process logging and writing).
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
    ``"gpu"``, ``"tpu"``), a count ``n`` (the first ``n`` devices), or a sequence of ``jax.Device``.

    Returns:
      A ``jax.sharding.Mesh`` with one axis named ``"batch"`` (``AXIS``) of ``Auto`` type.

    Raises:
      ValueError: a platform jax does not see here, a count outside ``[1, len(jax.devices())]``, an empty
        list, or (several processes) devices that leave out some process.
      TypeError: anything other than a string, an int or a list/tuple of ``jax.Device``.
    """
    if isinstance(devices, str):
        if devices == "all":
            devices = jax.devices()
        else:
            try:
                devices = jax.devices(devices)
            except RuntimeError as e:
                raise ValueError(
                    f"devices={devices!r}: no such platform here ({e}); use 'all', a platform "
                    f"that jax sees ({jax.default_backend()!r}), a count or a list of devices"
                ) from None
    elif isinstance(devices, bool) or not isinstance(devices, int | list | tuple):
        raise TypeError(f"devices must be 'all', a platform name, a count or a list of jax devices, got {devices!r}")
    elif isinstance(devices, int):
        available = jax.devices()
        if not 0 < devices <= len(available):
            raise ValueError(
                f"asked for {devices} devices, {len(available)} available ({available[0].platform}); "
                "on the CPU set XLA_FLAGS=--xla_force_host_platform_device_count=N before importing jax"
            )
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
            "process's devices, as jax.devices() lists them), or a list with devices of every process"
        )


def replicated(mesh: Mesh) -> NamedSharding:
    """The sharding that keeps a full copy of an array on every device of ``mesh`` (params, optimizer state).

    ``jax.device_put(tree, replicated(mesh))`` places a whole pytree.
    """
    return NamedSharding(mesh, PartitionSpec())


def batch_sharding(mesh: Mesh, batch_axis: int = 0) -> NamedSharding:
    """Arrays split along ``batch_axis`` over the mesh, replicated along the others.

    For arrays whose ``batch_axis`` length the number of devices divides.
    """
    return NamedSharding(mesh, PartitionSpec(*([None] * batch_axis), AXIS))


def batch_constraint(mesh: Mesh, batch_axis: int = 0):
    """A function that constrains an array to be sharded along ``batch_axis`` over the mesh (inside ``jit``).

    ``jax.lax.with_sharding_constraint`` with :func:`batch_sharding`; values are unchanged.
    """
    sharding = batch_sharding(mesh, batch_axis)
    return lambda x: jax.lax.with_sharding_constraint(x, sharding)


def check_divisible(batch_size: int, mesh: Mesh, what: str = "batch_size") -> None:
    """Raise ValueError unless ``batch_size`` is a multiple of the number of devices of ``mesh``."""
    n = mesh.devices.size
    if batch_size % n:
        raise ValueError(
            f"{what} {batch_size} must be divisible by the {n} devices of the mesh for data "
            f"parallelism (e.g. {batch_size - batch_size % n or n})"
        )


# ----------------------------------------------------------------------------------------------- several processes


class ProcessMismatch(ValueError):
    """The processes of one job disagree on what they must share (data, state, keys, position, mesh).

    A ``ValueError``, raised on every process alike instead of JAX's assertion or a hang.
    """


_EVERY_PROCESS = [os.environ.get("FDL_LOG_EVERY_PROCESS") == "1"]


def log_from_every_process(on: bool = True) -> None:
    """Let every process of a multi-process job log (each line prefixed ``[process i]``), not only process 0.

    ``FDL_LOG_EVERY_PROCESS=1`` in the environment does the same. Progress bars stay on process 0.
    """
    _EVERY_PROCESS[0] = bool(on)


def speaks() -> bool:
    """Whether this process logs: always with one process; with several, process 0 (or every process after
    :func:`log_from_every_process`)."""
    return jax.process_count() == 1 or jax.process_index() == 0 or _EVERY_PROCESS[0]


def writes() -> bool:
    """Whether this process writes the job's files (checkpoints, ``results.json``): process 0, or the only one."""
    return not jax.distributed.is_initialized() or jax.process_index() == 0


def voice(log):
    """``log`` as this process should use it: ``None`` (silence) on processes that do not :func:`speaks`, and
    prefixed ``[process i]`` after :func:`log_from_every_process`."""
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

    For jobs in which no process holds the whole training set: every process calls
    ``X, y = global_rows((X_mine, y_mine))`` and passes the result to ``fit``; process 0's rows come first.
    Nothing is sent between processes but a few numbers.

    Args:
      tree: an array, or a pytree of arrays (e.g. ``(X, y)``), each with this process's rows on axis 0.
      mesh: the devices (default: every device, :func:`make_mesh` ``("all")``).

    Returns:
      The same pytree of jax arrays, each ``(rows of every process, ...)``, sharded along axis 0
        (:func:`batch_sharding`).

    Raises:
      ValueError: leaves of different row counts, a row count this process's devices do not divide, or a mesh
        whose processes have different numbers of devices.
      ProcessMismatch: processes with different row counts, trailing shapes or dtypes.
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
            raise ValueError(
                f"global_rows: the mesh gives the processes different numbers of devices "
                f"({per_process}); use a mesh with as many devices of every process"
            )
        if not leaves or any(a.ndim == 0 for a in leaves):
            raise ValueError("global_rows: give arrays with a leading row axis")
        rows = {len(a) for a in leaves}
        if len(rows) > 1:
            raise ValueError(f"global_rows: the arrays have different numbers of rows {sorted(rows)} on process {me}")
        n, k = len(leaves[0]), per_process.get(me, 0)
        if k == 0:
            raise ValueError(f"global_rows: the mesh has no device of process {me}; use make_mesh('all')")
        if n == 0 or n % k:
            raise ValueError(
                f"global_rows: process {me} has {n} rows, which its {k} device(s) of the mesh cannot "
                f"share evenly; give every process a multiple of {k} rows (e.g. drop the last "
                f"{n % k or k})"
                if n
                else f"global_rows: process {me} has no rows"
            )

    together(check)
    shapes = json.dumps([[list(a.shape), str(a.dtype)] for a in leaves])
    agree(
        {
            "the number of rows": len(leaves[0]),
            "the rows' shapes and dtypes": zlib.crc32(
                json.dumps([[list(a.shape[1:]), str(a.dtype)] for a in leaves]).encode()
            ),
        },
        hint="give every process the same number of rows (trim every process to the smallest count) of arrays "
        "of the same trailing shape and dtype",
        details=shapes,
    )
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

    Shapes are checked on the global arrays; ``check(X_rows, y_rows)`` runs on each process's own rows through
    :func:`together`. Returns ``(X, y)`` unchanged.

    Raises:
      TypeError: one of ``X`` and ``y`` global and the other not.
      ValueError: different row counts, or arrays on different devices; and what ``check`` raises.
    """
    for name, a in (("X", X), ("y", y)):
        if not is_global(a):
            raise TypeError(
                f"{what}: {name} is not laid out over the devices like the other (a global array); give "
                "both as fdl.parallel.global_rows((X, y)) makes them, or both as host arrays"
            )
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

    The process that raised re-raises; the others raise the same class with its message prefixed
    ``process i:``, so that none trains on into a hang. Also a barrier. Returns what ``check`` returned.
    """
    if jax.process_count() == 1:
        return check(*args, **kwargs)
    error, result = None, None
    try:
        result = check(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - sent to the other processes, then raised again
        error = e
    message = (
        b""
        if error is None
        else json.dumps([type(error).__module__, type(error).__qualname__, str(error)]).encode()[: _MESSAGE - 1]
    )
    buffer = np.zeros(_MESSAGE, np.uint8)
    buffer[0] = error is not None
    buffer[1 : 1 + len(message)] = np.frombuffer(message, np.uint8)
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

    An array split over processes counts by its shape, dtype and layout only; typed PRNG keys by their data.
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

    ``hint`` says what to do (one string, or one per name); ``details`` (e.g. shapes) is added to the message.

    Raises:
      ProcessMismatch: on every process alike, when some value differs between processes.
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
    raise ProcessMismatch(
        "the processes of this job disagree on "
        + "; and on ".join(lines)
        + (f" (process {jax.process_index()}: {details})" if details else "")
    )


def broadcast(tree):
    """Process 0's values of a pytree of arrays, bit for bit, on every process (NumPy arrays).

    Every process passes a tree of the same structure, shapes and dtypes (only process 0's values are read).
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
        out.append(got[at : at + size].view(a.dtype).reshape(a.shape).copy())
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
    buffer[: len(data)] = np.frombuffer(data, np.uint8)
    return json.loads(bytes(_broadcast_uint32(buffer.view(np.uint32)).view(np.uint8)[:size]).decode())


def place(tree, sharding: NamedSharding):
    """Put a pytree's arrays on ``sharding``'s devices, on one process or several.

    An array already laid out over the same devices is kept; with several processes each places its own copy
    of a host value (check with :func:`agree` first that the copies are equal).

    Raises:
      ValueError: an array laid out over other devices than the mesh's, across processes (JAX cannot move it).
    """
    devices = sharding.device_set

    def one(a):
        if isinstance(a, jax.Array) and is_global(a):
            if a.sharding.device_set == devices:
                return a
            if spans_processes(a):
                raise ValueError(
                    f"an array of shape {a.shape} lies on other devices ({len(a.sharding.device_set)}) "
                    f"than the mesh's ({len(devices)}); build it (global_rows) with the same mesh as "
                    "DataParallel"
                )
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
