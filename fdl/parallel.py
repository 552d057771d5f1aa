"""Data-parallel training on several devices with ``jax.sharding`` (no hand-written collectives).

A one-axis :class:`~jax.sharding.Mesh` named ``"batch"`` spans the devices; every training batch is sharded
along it, params, optimizer state and data are replicated, and XLA inserts the reductions of the gradients.
The mesh axis is of the ``Auto`` type so that hand-written VJPs (whose weight gradients contract over the
sharded batch axis, e.g. ``x.T @ g``) are partitioned by XLA like any other computation.

On one host, simulate devices on the CPU with ``XLA_FLAGS=--xla_force_host_platform_device_count=8``
(set before jax starts). On several hosts, call ``jax.distributed.initialize()`` first on every host; then
``jax.devices()`` lists every host's devices and ``fit(..., plugins=[DataParallel("all")])`` runs on all of them.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "batch"


def make_mesh(devices="all") -> Mesh:
    """A one-axis data-parallel mesh over ``devices``.

    ``devices``: ``"all"`` (every device of the default backend), a platform name (``"cpu"``, ``"gpu"``,
    ``"tpu"``: every device of that platform), a count ``n`` (the first ``n`` devices), or a sequence of
    ``jax.Device``. Not in the book (it trains on one CPU).

    Returns:
      A ``jax.sharding.Mesh`` with one axis named ``"batch"`` (``AXIS``) of ``Auto`` type.

    Raises:
      ValueError: a platform jax does not see here, a count outside ``[1, len(jax.devices())]``, or an
        empty list.
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
    return Mesh(np.array(devices), (AXIS,), axis_types=(jax.sharding.AxisType.Auto,))


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


def check_divisible(batch_size: int, mesh: Mesh) -> None:
    """Check that ``batch_size`` splits evenly over the devices of ``mesh``.

    Raises:
      ValueError: ``batch_size`` is not a multiple of the number of devices; the message suggests one.
    """
    n = mesh.devices.size
    if batch_size % n:
        raise ValueError(f"batch_size {batch_size} must be divisible by the {n} devices of the mesh for data "
                         f"parallelism (e.g. {batch_size - batch_size % n or n})")
