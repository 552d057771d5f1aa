"""Data-parallel training on several devices with ``jax.sharding`` (no hand-written collectives).

A one-axis :class:`~jax.sharding.Mesh` named ``"batch"`` spans the devices; every training batch is sharded
along it, params, optimizer state and data are replicated, and XLA inserts the reductions of the gradients.
The mesh axis is of the ``Auto`` type so that hand-written VJPs (whose weight gradients contract over the
sharded batch axis, e.g. ``x.T @ g``) are partitioned by XLA like any other computation.

On one host, simulate devices on the CPU with ``XLA_FLAGS=--xla_force_host_platform_device_count=8``
(set before jax starts). On several hosts, call ``jax.distributed.initialize()`` first on every host; then
``jax.devices()`` lists every host's devices and the same ``fit(..., devices="all")`` call runs on all of them.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "batch"


def make_mesh(devices="all") -> Mesh:
    """A one-axis data-parallel mesh: ``"all"`` devices, the first ``n``, or an explicit device list."""
    if devices == "all":
        devices = jax.devices()
    elif isinstance(devices, int):
        available = jax.devices()
        if not 0 < devices <= len(available):
            raise ValueError(f"asked for {devices} devices, {len(available)} available ({available[0].platform}); "
                             "on the CPU set XLA_FLAGS=--xla_force_host_platform_device_count=N before importing jax")
        devices = available[:devices]
    devices = list(devices)
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
