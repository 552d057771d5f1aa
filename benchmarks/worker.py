"""The worker protocol: each (workload, implementation) is measured in its own process, spoken to in JSON lines.

The parent (:class:`Worker`) starts ``python -m benchmarks --worker IMPL`` and sends one command a line; the
worker (:func:`serve`) answers one JSON line each on its real stdout (anything else it prints goes to stderr):

* ``{"setup": name, "path": npz, "quick": bool, "conv_impl": ...[, "runs": [S, ...]]}``: build and compile
  -> ``{"compile_s", "runtime_rss_mib"}``;
* ``{"unit": u[, "size": S]}``: train unit ``u`` -> ``{"seconds", "steps", "final_loss", "mean_loss"}``;
* ``{"finish": true}`` -> ``{"peak_rss_mib"}``: the peak resident set since the setup.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]  # the folder that holds the benchmarks package


def reset_peak_rss() -> None:
    """Start the peak-RSS count afresh (Linux >= 4.0). A forked child inherits its parent's high-water mark
    (and ``execve`` keeps it), so without this every worker would report at least the parent's size."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss_mib() -> float:
    """The process's peak resident set (VmHWM, else ``getrusage`` maxrss), in MiB."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _runner(impl, device, cmd):
    data = np.load(cmd["path"])
    if "runs" in cmd:  # --runs
        from .fdl_runner import FdlRunsRunner

        return FdlRunsRunner(cmd["setup"], data, cmd["runs"], cmd.get("conv_impl"))
    if impl.startswith("torch"):
        from .torch_runner import TorchRunner

        return TorchRunner(cmd["setup"], data, impl, device=device)
    from .fdl_runner import FdlRunner

    return FdlRunner(cmd["setup"], data, impl, conv_impl=cmd.get("conv_impl"))


def serve(impl: str, device: str = "cpu", precision: str = "default") -> None:
    """Serve one implementation: for each workload the parent names, build and compile, run the units it asks
    for, and report the peak memory since that workload's setup. fdl's device and precision come from the
    environment the parent set (``JAX_PLATFORMS``, ``JAX_DEFAULT_MATMUL_PRECISION``); PyTorch's are set here."""
    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything else printed goes to stderr, the protocol owns the real stdout
    if impl.startswith("torch"):
        import torch

        torch.set_num_threads(os.cpu_count())
        dev = "cuda" if device == "gpu" else "cpu"
        if dev == "cuda":  # the same float32 arithmetic as jax: TF32 on Ampere+ ("default"), or full float32
            torch.set_float32_matmul_precision("high" if precision == "default" else "highest")
            torch.backends.cudnn.allow_tf32 = precision == "default"
        float((torch.ones(2, device=dev) @ torch.ones(2, device=dev)).item())  # start the runtime (and CUDA)
    else:
        import jax.numpy as jnp

        import fdl  # noqa: F401

        float(jnp.ones(2) @ jnp.ones(2))
    runner = None
    for line in sys.stdin:
        cmd = json.loads(line)
        if "setup" in cmd:
            runner = None
            reset_peak_rss()
            base = peak_rss_mib()
            runner = _runner(impl, device, cmd)
            reply = {"compile_s": runner.compile_s, "runtime_rss_mib": base}
        elif "unit" in cmd:
            start = time.perf_counter()
            losses = runner.run(cmd["unit"], *([cmd["size"]] if "size" in cmd else []))
            seconds = time.perf_counter() - start
            losses = np.concatenate([np.ravel(np.asarray(a)) for a in losses]).astype(float)
            reply = {"seconds": seconds, "steps": len(losses), "final_loss": losses[-1], "mean_loss": losses.mean()}
        else:
            reply = {"peak_rss_mib": peak_rss_mib()}
        proto.write(json.dumps(reply) + "\n")
        proto.flush()


def worker_env(device: str, precision: str, base=None) -> dict:
    """The workers' environment: ``--device cpu`` hides every accelerator from jax (``JAX_PLATFORMS=cpu``);
    ``--device gpu`` lets jax pick its default (the GPU, where ``jax[cuda12]`` is installed) without
    preallocating 75 % of its memory, since several workers share it; ``--precision highest`` sets jax's
    float32 matmul precision (what ``fdl.precision.set_matmul_precision`` sets)."""
    env = dict(os.environ if base is None else base)
    if device == "cpu":
        env["JAX_PLATFORMS"] = "cpu"
    else:
        if env.get("JAX_PLATFORMS") == "cpu":
            del env["JAX_PLATFORMS"]
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    if precision == "highest":
        env["JAX_DEFAULT_MATMUL_PRECISION"] = "highest"
    return env


def with_package_path(env: dict) -> dict:
    """``env`` with the benchmarks package's folder first on ``PYTHONPATH``, so that ``python -m benchmarks``
    finds it from any working directory."""
    paths = [str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {**env, "PYTHONPATH": os.pathsep.join(paths)}


class Worker:
    """A worker process for one implementation, spoken to in JSON lines."""

    def __init__(self, impl, device="cpu", precision="default", env=None):
        self.impl = impl
        cmd = [sys.executable, "-m", "benchmarks", "--worker", impl, "--device", device, "--precision", precision]
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=with_package_path(worker_env(device, precision, env)),
        )

    def ask(self, **cmd):
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            raise RuntimeError(f"benchmark worker {self.impl} failed (exit {self.proc.returncode}); see stderr")
        return json.loads(line)

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
