"""The command line: ``python -m benchmarks [options]`` (or ``fdl benchmark [options]``); see README.md here."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

from .compare import IMPLS
from .workloads import WORKLOADS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Training-step benchmark: fdl, fdl via jax.grad, PyTorch (eager; on a GPU also with CUDA graphs)",
    )
    parser.add_argument("--quick", action="store_true", help="a few steps per unit: a smoke run")
    parser.add_argument(
        "--workloads", nargs="+", choices=list(WORKLOADS), default=None, help="default: all (with --runs: W1 W3)"
    )
    parser.add_argument(
        "--impls", nargs="+", choices=IMPLS, default=None, help="default: all (torch-graphs only with --device gpu)"
    )
    parser.add_argument(
        "--device",
        choices=("cpu", "gpu"),
        default="cpu",
        help="where fdl and PyTorch run (default cpu, even where a GPU is present); gpu needs jax "
        "with CUDA (jax[cuda12]) and, for the PyTorch rows, a CUDA build of torch",
    )
    parser.add_argument(
        "--precision",
        choices=("default", "highest"),
        default="default",
        help="float32 products and convolutions: 'default' is each backend's (TF32 on Ampere+ GPUs, "
        "set alike for PyTorch), 'highest' full float32 in both; no effect on the CPU",
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed units per implementation (default 5, quick 3)")
    parser.add_argument("--out", type=Path, default=None, help="directory for results.json and table.md")
    parser.add_argument(
        "--shared-workers",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="one worker process per implementation for all workloads (default with --quick) "
        "instead of a fresh one per workload and implementation",
    )
    parser.add_argument(
        "--conv-impl",
        choices=("xla", "slices", "auto", "im2col"),
        default=None,
        help="the fdl rows' convolution, the conv2d layer's impl= (default: the layer's own)",
    )
    parser.add_argument(
        "--runs",
        nargs="+",
        type=int,
        default=None,
        metavar="S",
        help="instead of the implementations: time S runs of each workload trained together as one "
        "vmapped program (fdl.train.make_chunk(..., runs=True), as fit(seed=[...]) trains "
        "them) against one run alone, in ms per run-step, e.g. --runs 1 3 10 30 (dense and "
        "conv workloads; default W1 W3); writes runs.json and runs.md",
    )
    parser.add_argument("--worker", choices=IMPLS, help=argparse.SUPPRESS)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.runs is not None and (min(args.runs) < 1 or "W4" in (args.workloads or ())):
        parser.error("--runs takes run counts of at least 1, for the dense and conv workloads (not W4)")
    args.workloads = args.workloads or (["W1", "W3"] if args.runs else list(WORKLOADS))
    if args.worker:
        from .worker import serve

        return serve(args.worker, args.device, args.precision)
    repeats = args.repeats or (3 if args.quick else 5)
    if repeats < 1:
        parser.error("--repeats must be at least 1")
    impls = list(args.impls or (IMPLS if args.device == "gpu" else [i for i in IMPLS if i != "torch-graphs"]))
    if args.runs:
        impls = ["fdl"]  # --runs times fdl alone
    if args.device == "cpu" and "torch-graphs" in impls:
        parser.error(
            "torch-graphs captures CUDA graphs and needs --device gpu; on the CPU PyTorch runs eager (--impls torch)"
        )
    probe = None
    if args.device == "gpu":
        from .device import gpu_error, probe_gpu

        probe = probe_gpu(any(i.startswith("torch") for i in impls))
        error = gpu_error(probe, impls)
        if error:
            parser.error(error)
    elif "torch" in impls and importlib.util.find_spec("torch") is None:
        print("torch is not installed (pip install -e '.[bench]'); benchmarking without it")
        impls.remove("torch")
    # This process writes every worker's inputs (weights, data, batch orders) with jax on the CPU, whatever the
    # device, so that they are the same numbers on every machine; the workers get the caller's environment.
    base_env = dict(os.environ)
    if "jax" not in sys.modules:
        os.environ["JAX_PLATFORMS"] = "cpu"
    try:
        if args.runs:
            from .runs import run_runs

            return run_runs(args, repeats, probe, base_env)
        from .compare import run_implementations

        return run_implementations(args, impls, repeats, probe, base_env)
    finally:
        os.environ.clear()
        os.environ.update(base_env)
