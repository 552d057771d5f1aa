"""The implementations side by side: every workload on every implementation, ratios against the targets, and
results.json / table.md."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from .inputs import write_inputs
from .report import finish, interleave, new_results
from .worker import Worker
from .workloads import WORKLOADS

IMPLS = ("fdl", "fdl-autodiff", "fdl-step", "torch", "torch-graphs")
LABELS = {
    "fdl": "fdl (hand-written VJPs, scanned epoch)",
    "fdl-autodiff": "fdl via jax.grad (scanned epoch)",
    "fdl-step": "fdl (hand-written, one jitted step per call)",
    "torch": "PyTorch eager",
    "torch-graphs": "PyTorch, whole step as a CUDA graph",
}
# manual/autodiff W4 0.8 and fdl/torch 1.0 (issue 7); autodiff/manual 1.2 and W1 fdl/torch 0.6 (issue 12)
TARGETS = {
    "manual/autodiff": {"W1": 1.0, "W4": 0.8},
    "autodiff/manual": {"W2": 1.2, "W3": 1.2},
    "fdl/torch": {"W1": 0.6, "W2": 1.0, "W3": 1.0, "W4": 1.0},
}
RATIOS = (
    ("manual/autodiff", ("fdl", "fdl-autodiff")),
    ("autodiff/manual", ("fdl-autodiff", "fdl")),
    ("fdl/torch", ("fdl", "torch")),
    ("fdl/torch-graphs", ("fdl", "torch-graphs")),
    ("fdl-step/torch", ("fdl-step", "torch")),
)


def run_workload(name, workers, repeats, quick, tmp, log, conv_impl=None):
    """Warm-up and timed units of one workload on every worker; interleaved, each in a rotated order."""
    w, impls, started = WORKLOADS[name], list(workers), time.perf_counter()
    path = Path(tmp) / f"{name}.npz"
    write_inputs(name, quick, 1 + repeats, path)
    setup = {
        impl: workers[impl].ask(setup=name, path=str(path), quick=quick, conv_impl=conv_impl)  # one at a time
        for impl in impls
    }
    check = {impl: workers[impl].ask(unit=0) for impl in impls}  # the warm-up, from the same start for all

    def ms(impl, unit):
        reply = workers[impl].ask(unit=unit)
        return 1000.0 * reply["seconds"] / reply["steps"]

    times = interleave(impls, repeats, ms)
    peak = {impl: workers[impl].ask(finish=True)["peak_rss_mib"] for impl in impls}
    rows = {}
    for impl in impls:
        t = times[impl]
        rows[impl] = {
            "ms_per_step": statistics.median(t),
            "min_ms": min(t),
            "max_ms": max(t),
            "all_ms": t,
            "steps_per_unit": check[impl]["steps"],
            "compile_s": setup[impl]["compile_s"],
            "runtime_rss_mib": setup[impl]["runtime_rss_mib"],
            "peak_rss_mib": peak[impl],
            "final_loss": check[impl]["final_loss"],
            "mean_loss": check[impl]["mean_loss"],
        }

    def spread(key):  # the largest difference between implementations, relative to the smallest value
        values = [r[key] for r in rows.values()]
        return (max(values) - min(values)) / max(abs(min(values)), 1e-12)

    log(
        f"{name} ({w.title}): "
        + ", ".join(f"{i} {r['ms_per_step']:.3f} ms" for i, r in rows.items())
        + "; final losses "
        + ", ".join(f"{i} {r['final_loss']:.6g}" for i, r in rows.items())
        + f" (max relative difference {spread('final_loss'):.1e}; of the warm-up unit's mean loss "
        f"{spread('mean_loss'):.1e}); {time.perf_counter() - started:.0f} s"
    )
    return {
        "title": w.title,
        "implementations": rows,
        "loss_check": {"max_rel_diff": spread("final_loss"), "mean_max_rel_diff": spread("mean_loss")},
        "ratios": ratios(name, rows),
    }


def ratios(name, rows):
    """``{"fdl/torch": {"value", "target", "met"}, ...}``: each ratio of median ms per step whose two
    implementations ran, with its target for this workload (None where it has none)."""
    out = {}
    for key, (a, b) in RATIOS:
        if a in rows and b in rows:
            target = TARGETS.get(key, {}).get(name)
            value = rows[a]["ms_per_step"] / rows[b]["ms_per_step"]
            out[key] = {"value": value, "target": target, "met": None if target is None else value <= target}
    return out


def table(results) -> str:
    lines = [
        "| workload | implementation | ms/step (median) | min-max | compile s | peak RSS MiB | "
        "above runtime MiB | final loss |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, w in results["workloads"].items():
        for impl, r in w["implementations"].items():
            comp = "-" if r["compile_s"] is None else f"{r['compile_s']:.2f}"
            lines.append(
                f"| {name} | {LABELS[impl]} | {r['ms_per_step']:.3f} | {r['min_ms']:.3f}-{r['max_ms']:.3f} "
                f"| {comp} | {r['peak_rss_mib']:.0f} | {r['peak_rss_mib'] - r['runtime_rss_mib']:.0f} "
                f"| {r['final_loss']:.5g} |"
            )
    lines += ["", "| workload | ratio | measured | target | met |", "|---|---|---:|---:|---|"]
    for name, w in results["workloads"].items():
        for key, r in w["ratios"].items():
            target = "-" if r["target"] is None else f"<= {r['target']:.1f}"
            met = "-" if r["met"] is None else ("yes" if r["met"] else "no")
            lines.append(f"| {name} | {key} | {r['value']:.2f} | {target} | {met} |")
    return "\n".join(lines)


def run_implementations(args, impls, repeats, probe, base_env):
    """Every workload of ``args.workloads`` on every implementation of ``impls``; results.json and table.md."""
    results = new_results(args, repeats, probe)
    gpu = results["machine"].get("gpu")
    where = f"; GPU {gpu['jax_device_kind']} (torch: {gpu['torch_device_name']})" if gpu else "; CPU only"
    print(
        f"{results['machine']['cpu']}, {results['machine']['cores']} cores{where}; float32 precision "
        f"{args.precision}; load average {results['load_start'][0]:.2f}; {repeats} interleaved repetitions "
        "after a warm-up"
    )
    shared = args.quick if args.shared_workers is None else args.shared_workers
    results["shared_workers"] = shared
    workers = {}
    try:
        with tempfile.TemporaryDirectory(prefix="fdl-bench-") as tmp:
            for name in args.workloads:
                if not shared or not workers:
                    workers = {impl: Worker(impl, args.device, args.precision, base_env) for impl in impls}
                results["workloads"][name] = run_workload(
                    name, workers, repeats, args.quick, tmp, print, args.conv_impl
                )
                if not shared:
                    for w in workers.values():
                        w.close()
    finally:
        for w in workers.values():
            w.close()
    finish(results, table(results), args.out, ("results.json", "table.md"))
    return results
