"""``--runs``: S runs of a workload trained together as one program against one run alone; runs.json, runs.md."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from .inputs import write_inputs
from .report import finish, interleave, new_results
from .worker import Worker
from .workloads import WORKLOADS


def run_runs(args, repeats, probe, base_env):
    """For each workload, one worker times one run alone and S runs together for each S, interleaved as
    :func:`benchmarks.compare.run_workload` interleaves implementations; ``{"workloads": {name: {"sizes":
    {S: row}}}}``."""
    sizes = sorted(set(args.runs))
    results = new_results(args, repeats, probe, runs=sizes)
    print(
        f"{results['machine']['cpu']}, {results['machine']['cores']} cores, device {args.device}; load average "
        f"{results['load_start'][0]:.2f}; S = {sizes} runs together against one run alone; {repeats} "
        "interleaved repetitions after a warm-up"
    )
    with tempfile.TemporaryDirectory(prefix="fdl-bench-") as tmp:
        for name in args.workloads:
            w, started = WORKLOADS[name], time.perf_counter()
            path = Path(tmp) / f"{name}.npz"
            write_inputs(name, args.quick, 1 + repeats, path)
            worker = Worker("fdl", args.device, args.precision, base_env)
            try:
                setup = worker.ask(setup=name, path=str(path), quick=args.quick, runs=sizes, conv_impl=args.conv_impl)
                kinds = [0] + sizes  # 0: one run alone
                check = {S: worker.ask(unit=0, size=S) for S in kinds}

                def ms(S, unit, worker=worker):
                    reply = worker.ask(unit=unit, size=S)
                    return 1000.0 * reply["seconds"] / reply["steps"] / max(S, 1)

                times = interleave(kinds, repeats, ms)
                peak = worker.ask(finish=True)["peak_rss_mib"]
            finally:
                worker.close()
            alone = statistics.median(times[0])
            rows = {}
            for S in kinds:
                t = times[S]
                rows["alone" if S == 0 else str(S)] = {
                    "runs": max(S, 1),
                    "ms_per_run_step": statistics.median(t),
                    "min_ms": min(t),
                    "max_ms": max(t),
                    "all_ms": t,
                    "vs_alone": statistics.median(t) / alone,
                    "compile_s": setup["compile_s"][str(S)],
                    "steps_per_unit": check[S]["steps"],
                    "final_loss_run0": check[S]["final_loss"],
                    "rel_diff_run0": abs(check[S]["final_loss"] - check[0]["final_loss"])
                    / max(abs(check[0]["final_loss"]), 1e-12),
                }
            results["workloads"][name] = {"title": w.title, "sizes": rows, "peak_rss_mib": peak}
            print(
                f"{name} ({w.title}): one run {alone:.3f} ms/step; "
                + ", ".join(
                    f"S={r['runs']} {r['ms_per_run_step']:.3f} ms/run-step ({r['vs_alone']:.2f}x)"
                    for k, r in rows.items()
                    if k != "alone"
                )
                + f"; {time.perf_counter() - started:.0f} s"
            )
    finish(results, table(results), args.out, ("runs.json", "runs.md"))
    return results


def table(results) -> str:
    lines = [
        "| workload | runs | ms per run-step (median) | min-max | vs one run alone | compile s | "
        "run 0's warm-up loss vs alone (rel.) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, w in results["workloads"].items():
        for key, r in w["sizes"].items():
            what = "1, alone (make_chunk)" if key == "alone" else f"{r['runs']} together"
            lines.append(
                f"| {name} | {what} | {r['ms_per_run_step']:.3f} | {r['min_ms']:.3f}-{r['max_ms']:.3f} | "
                f"{r['vs_alone']:.2f} | {r['compile_s']:.2f} | {r['rel_diff_run0']:.1e} |"
            )
    return "\n".join(lines)
