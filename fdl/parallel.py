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
    ``jax.Device``. Raises ValueError for an unknown name, too many devices or an empty list, and TypeError
    for anything else.
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
    return NamedSharding(mesh, PartitionSpec())


def batch_sharding(mesh: Mesh, batch_axis: int = 0) -> NamedSharding:
    """Arrays split along ``batch_axis`` over the mesh, replicated along the others."""
    return NamedSharding(mesh, PartitionSpec(*([None] * batch_axis), AXIS))


def batch_constraint(mesh: Mesh, batch_axis: int = 0):
    """A function that constrains an array to be sharded along ``batch_axis`` over the mesh (inside ``jit``)."""
    sharding = batch_sharding(mesh, batch_axis)
    return lambda x: jax.lax.with_sharding_constraint(x, sharding)


def check_divisible(batch_size: int, mesh: Mesh) -> None:
    n = mesh.devices.size
    if batch_size % n:
        raise ValueError(f"batch_size {batch_size} must be divisible by the {n} devices of the mesh for data "
                         f"parallelism (e.g. {batch_size - batch_size % n or n})")
