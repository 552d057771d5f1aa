"""The ``fdl`` command: ``fdl reproduce`` runs every chapter's experiment and prints one table; ``fdl run chNN``;
``fdl benchmark`` times training steps against ``jax.grad`` and PyTorch (the ``benchmarks`` package,
``python -m benchmarks``).

The experiment scripts live in ``experiments/`` of the source tree; a wheel ships them as the data-only
package ``fdl._experiments``. The benchmark lives in ``benchmarks/`` of the source tree only. fdl never imports
either: each runs as its own process, writes ``results.json``, and this command collects those files.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

from .._io import write_json_atomic
from .experiment import enable_progress, read_results, results_table, run_meta

PROGRESS_HELP = "a progress bar per fdl.fit (tqdm; without it, a line per epoch and a note saying so)"
GET_SCRIPTS = (
    "they ship in fdl's wheel (fdl/_experiments) and in its source tree (experiments/): reinstall fdl "
    "(pip install fdl), or clone the source and pass --experiments path/to/experiments (or set "
    "FDL_EXPERIMENTS)"
)
GET_BENCHMARK = (
    "it is in fdl's source tree only (benchmarks/), not in the wheel: clone the source and run from it, "
    "or pass --benchmarks path/to/benchmarks (or set FDL_BENCHMARKS)"
)


def _packaged() -> str | None:
    try:
        spec = importlib.util.find_spec("fdl._experiments")
    except (ImportError, ValueError):
        return None
    return next(iter(spec.submodule_search_locations or []), None) if spec else None


def experiments_dir(explicit: str | None = None) -> Path:
    """Where the chapter scripts are: ``--experiments``, ``$FDL_EXPERIMENTS``, the copy installed with fdl
    (``fdl/_experiments``), or ``experiments/`` beside the package in a source checkout."""
    candidates = [
        explicit,
        os.environ.get("FDL_EXPERIMENTS"),
        _packaged(),
        Path(__file__).resolve().parents[2] / "experiments",
    ]
    for c in candidates:
        if c and Path(c).is_dir() and list(Path(c).glob("ch[0-9][0-9]_*.py")):
            return Path(c)
    raise SystemExit(f"fdl: cannot find the experiment scripts (chNN_*.py); {GET_SCRIPTS}.")


def chapter_list(directory: Path | None = None) -> str:
    """One line per chapter script: ``chNN  first line of its docstring``."""
    try:
        scripts = find_scripts(directory or experiments_dir())
    except SystemExit as e:
        return str(e)
    lines = []
    for script in scripts:
        try:
            doc = ast.get_docstring(ast.parse(script.read_text())) or ""
        except (SyntaxError, UnicodeDecodeError):
            doc = ""
        lines.append(f"  {script.name[:4]}  {doc.splitlines()[0] if doc else script.stem}")
    return "\n".join(lines)


def find_scripts(directory: Path, chapters: list[str] | None = None) -> list[Path]:
    scripts = sorted(directory.glob("ch[0-9][0-9]_*.py"))
    if not chapters:
        return scripts
    wanted = {f"ch{int(c.lower().removeprefix('ch')):02d}" for c in chapters}
    found = [s for s in scripts if s.name[:4] in wanted]
    missing = wanted - {s.name[:4] for s in found}
    if missing:
        raise SystemExit(
            f"fdl: no experiment for {', '.join(sorted(missing))}; available: {', '.join(s.name[:4] for s in scripts)}"
        )
    return found


def run_script(
    script: Path,
    out: Path,
    *,
    quick: bool,
    seed: int | None,
    extra: list[str] = (),
    head: list[str] | None = None,
    env: dict | None = None,
) -> tuple[int, float]:
    """Run ``script`` (or the command ``head``, e.g. ``python -m benchmarks``) with ``--out``, ``--quick``,
    ``--seed`` and ``extra``; (exit code, seconds)."""
    cmd = (head or [sys.executable, str(script)]) + ["--out", str(out)] + (["--quick"] if quick else [])
    cmd += ([] if seed is None else ["--seed", str(seed)]) + list(extra)
    print(f"\n=== {script.name}: {' '.join(cmd[1:])}", flush=True)
    start = time.perf_counter()
    code = subprocess.call(cmd, env=env)
    return code, time.perf_counter() - start


def reproduce(args) -> int:
    scripts = find_scripts(experiments_dir(args.experiments), args.chapters)
    out = Path(args.out)
    rows, failed, metas = [], [], {}
    for script in scripts:
        chapter = script.name[:4]
        code, seconds = run_script(script, out / script.stem, quick=args.quick, seed=args.seed)
        results = out / script.stem / "results.json"
        if code != 0 or not results.exists():
            failed.append(f"{script.name} (exit {code})")
            continue
        print(f"=== {script.name} finished in {seconds:.1f} s")
        metas[chapter], chapter_rows = read_results(results)
        rows += [{"chapter": chapter, **r} for r in chapter_rows]
    smoke = any(m.get("smoke", args.quick) for m in metas.values()) if metas else args.quick
    print("\n" + results_table(rows, quick=smoke, first=("chapter",)))
    write_json_atomic(out / "results.json", {"meta": run_meta(args, chapters=metas, smoke=smoke), "results": rows})
    print(f"\nresults: {out / 'results.json'}")
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


def run(args) -> int:
    if args.chapter is None:
        args.parser.print_help()
        return 0 if args.help else 2
    (script,) = find_scripts(experiments_dir(args.experiments), [args.chapter])
    if args.help:  # `fdl run ch04 --help`: the script's own options
        return subprocess.call([sys.executable, str(script), "--help"])
    out = Path(args.out) if args.out else Path("runs") / script.stem
    code, seconds = run_script(script, out, quick=args.quick, seed=args.seed, extra=args.rest)
    print(f"=== {script.name} finished in {seconds:.1f} s (exit {code}); results in {out}")
    return code


def benchmarks_dir(explicit: str | None = None) -> Path | None:
    """Where the benchmark package is (a folder with ``__main__.py``): ``--benchmarks``, ``$FDL_BENCHMARKS``, or
    ``benchmarks/`` beside the package in a source checkout; None if none is."""
    candidates = [explicit, os.environ.get("FDL_BENCHMARKS"), Path(__file__).resolve().parents[2] / "benchmarks"]
    return next((Path(c) for c in candidates if c and (Path(c) / "__main__.py").is_file()), None)


def _benchmark_command(directory: Path) -> tuple[list[str], dict]:
    """``python -m <package>`` and an environment whose ``PYTHONPATH`` finds the package from any directory."""
    path = [str(directory.resolve().parent)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return [sys.executable, "-m", directory.name], {**os.environ, "PYTHONPATH": os.pathsep.join(path)}


def benchmark_options(directory: Path | None) -> str:
    """The options ``fdl benchmark`` passes on, as the benchmark's own ``--help`` lists them."""
    if directory is None:
        return f"The benchmark's options: not found here; {GET_BENCHMARK}."
    head, env = _benchmark_command(directory)
    proc = subprocess.run(head + ["--help"], capture_output=True, text=True, env=env)
    lines = proc.stdout.splitlines()
    start = next((i for i, line in enumerate(lines) if line.endswith("options:")), None)
    if proc.returncode != 0 or start is None:
        return f"The benchmark's options: `{' '.join(head[1:])} --help` failed: {proc.stderr.strip()[-300:]}"
    return "Options passed on to the benchmark (python -m benchmarks; method: benchmarks/README.md):\n" + "\n".join(
        line for line in lines[start + 1 :] if not line.lstrip().startswith("-h, --help")
    )


def benchmark(args) -> int:
    directory = benchmarks_dir(args.benchmarks)
    if args.help:
        args.parser.print_help()
        print("\n" + benchmark_options(directory))
        return 0
    if directory is None:
        raise SystemExit(f"fdl: cannot find the benchmark (benchmarks/__main__.py); {GET_BENCHMARK}.")
    head, env = _benchmark_command(directory)
    out = Path(args.out) if args.out else Path("runs") / "benchmark"
    code, seconds = run_script(directory, out, quick=args.quick, seed=None, extra=args.rest, head=head, env=env)
    print(f"=== benchmark finished in {seconds:.1f} s (exit {code}); results in {out}")
    return code


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="fdl", description="Deep Learning from Scratch, in JAX")
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("reproduce", help="run every chapter's experiment and print one table beside the book")
    rep.add_argument("--quick", action="store_true", help="smoke runs on subsets (a few minutes in all)")
    rep.add_argument("--chapters", nargs="+", help="only these chapters, e.g. 3 4 or ch05")
    rep.add_argument("--seed", type=int, default=None, help="base seed passed to every script")
    rep.add_argument("--out", default="runs/reproduce", help="directory for results (default: runs/reproduce)")
    rep.add_argument("--progress", action="store_true", help=PROGRESS_HELP)
    rep.add_argument("--experiments", default=None, help=argparse.SUPPRESS)
    one = sub.add_parser(
        "run",
        add_help=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="run one chapter's experiment, e.g. `fdl run ch04 --quick`; further arguments go to the script",
        description="Run one chapter's experiment script; arguments fdl does not know go to the "
        "script.\n\nchapters:\n" + chapter_list(),
        epilog="A script's own options: fdl run chNN --help (e.g. fdl run ch04 --help).",
    )
    one.add_argument("chapter", nargs="?", help="the chapter, e.g. ch04 or 4")
    one.add_argument(
        "-h", "--help", action="store_true", help="without a chapter: this help; with one: the script's own options"
    )
    one.add_argument("--quick", action="store_true", help="a smoke run on a subset, not comparable with the book")
    one.add_argument("--seed", type=int, default=None, help="the base seed (default: the script's, the book's)")
    one.add_argument("--out", default=None, help="directory for results.json and pictures (default: runs/chNN_*)")
    one.add_argument("--progress", action="store_true", help=PROGRESS_HELP)
    one.add_argument("--experiments", default=None, help=argparse.SUPPRESS)
    one.set_defaults(parser=one)
    bench = sub.add_parser(
        "benchmark",
        add_help=False,
        help="time training steps: fdl, fdl via jax.grad, PyTorch "
        "(bench extra); further arguments go to the benchmark (python -m benchmarks), e.g. "
        "--workloads W1 W4",
        description="Time training steps: fdl, fdl via jax.grad, PyTorch "
        "(the bench extra); runs python -m benchmarks, and arguments fdl does not know go to it.",
    )
    bench.add_argument("-h", "--help", action="store_true", help="this help, with the benchmark's own options")
    bench.add_argument("--quick", action="store_true", help="a few steps per workload: a smoke run")
    bench.add_argument("--out", default=None, help="directory for results.json and table.md (default: runs/benchmark)")
    bench.add_argument("--benchmarks", default=None, help=argparse.SUPPRESS)
    bench.set_defaults(parser=bench)
    args, rest = parser.parse_known_args(argv)
    if rest and args.command == "reproduce":
        parser.error(f"unrecognized arguments for reproduce: {' '.join(rest)}")
    args.rest = rest  # run, benchmark: passed on to the script (e.g. --workloads W1 W4 --repeats 5)
    if args.command == "benchmark":
        return benchmark(args)
    if args.progress:
        enable_progress()  # FDL_PROGRESS=1, read by fit() in the experiment subprocesses
    return reproduce(args) if args.command == "reproduce" else run(args)


if __name__ == "__main__":
    sys.exit(main())
