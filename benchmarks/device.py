"""The machine: what jax and torch see of a GPU (asked in a subprocess), why ``--device gpu`` cannot run, and the
host and versions that results.json records."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from .worker import worker_env

PROBE = """
import json, sys
out = {}
try:
    import jax
    d = jax.devices()
    out["jax"] = {"platform": d[0].platform, "device_kind": d[0].device_kind, "count": len(d),
                  "version": jax.__version__}
except Exception as e:  # a broken CUDA install: say so instead of failing here
    out["jax"] = {"platform": None, "error": f"{type(e).__name__}: {e}"}
if "torch" in sys.argv[1:]:
    try:
        import torch
        ok = torch.cuda.is_available()
        out["torch"] = {"version": torch.__version__, "cuda": torch.version.cuda, "available": ok,
                        "name": torch.cuda.get_device_name(0) if ok else None}
    except ImportError:
        out["torch"] = None
print(json.dumps(out))
"""


def probe_gpu(with_torch: bool, env=None) -> dict:
    """What jax (and torch) see with the GPU workers' environment, from a short subprocess (so that this process,
    which writes the inputs on the CPU, never starts CUDA): ``{"jax": {"platform", "device_kind", "count",
    "version"}, "torch": {"version", "cuda", "available", "name"} or None}``."""
    cmd = [sys.executable, "-c", PROBE] + (["torch"] if with_torch else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, env=worker_env("gpu", "default", env), timeout=300)
    if proc.returncode != 0:
        return {"jax": {"platform": None, "error": proc.stderr.strip()[-500:]}, "torch": None}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def gpu_error(probe: dict, impls) -> str | None:
    """Why ``--device gpu`` cannot run these implementations on what :func:`probe_gpu` saw, or None."""
    jx = probe.get("jax") or {}
    if jx.get("platform") not in ("gpu", "cuda", "rocm"):
        seen = jx.get("error") or f"jax.devices() gives {jx.get('platform')} devices ({jx.get('device_kind')})"
        return (
            f"no GPU visible to jax/torch: {seen}. Install jax with CUDA (pip install -U 'jax[cuda12]', on a "
            "machine with an NVIDIA GPU and driver), or run with --device cpu"
        )
    th = probe.get("torch", None)
    if any(i.startswith("torch") for i in impls) and not (th and th.get("available")):
        seen = "torch is not installed" if not th else f"torch {th['version']} (CUDA {th['cuda']}) sees no GPU"
        return (
            f"no GPU visible to torch: {seen}. Install a CUDA build of PyTorch (pip install torch; see "
            "pytorch.org), or leave PyTorch out with --impls fdl fdl-autodiff fdl-step"
        )
    return None


def machine(device: str = "cpu", probe: dict | None = None):
    """The host (CPU model, cores, versions) and the device the workers ran on: ``device`` "cpu" or "gpu", and
    for a GPU its name as jax (``device_kind``) and torch (``get_device_name``) report it."""
    model = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").exists()
        else ""
    )
    versions = {}
    for mod in ("jax", "jaxlib", "numpy", "torch"):
        try:
            versions[mod] = __import__(mod).__version__
        except ImportError:
            versions[mod] = None
    info = {
        "cpu": model,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        **versions,
        "device": device,
    }
    if device == "gpu" and probe:
        jx, th = probe.get("jax") or {}, probe.get("torch") or {}
        info["gpu"] = {
            "jax_device_kind": jx.get("device_kind"),
            "jax_device_count": jx.get("count"),
            "jax_platform": jx.get("platform"),
            "torch_device_name": th.get("name"),
            "torch_cuda": th.get("cuda"),
        }
    return info
