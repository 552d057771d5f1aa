#!/usr/bin/env bash
# fdl's accelerator check (issue 14): on one machine, in under 8 minutes, run
#   1. env        what the machine has: GPU (nvidia-smi), Python, jax/jaxlib/torch, the devices jax and torch see
#   2. install    (skipped with --no-install) jax[cuda12] where jax sees no GPU, and fdl's test dependencies
#                 where they are missing; fdl itself runs from this checkout (PYTHONPATH), nothing is built
#   3. tests      the test suite without the tests that run whole chapter scripts (stage 5 runs those), with
#                 pytest-xdist where it is installed
#   4. benchmark  `python -m benchmarks --device DEVICE` (this folder's package, what `fdl benchmark` runs: fdl,
#                 fdl via jax.grad, one jitted step, PyTorch eager, and on a GPU PyTorch with CUDA graphs)
#   5. reproduce  `fdl reproduce --quick` (every chapter, smoke runs), then full chapters while time is left;
#                 with --book instead: the whole book (`fdl reproduce`, every chapter in full) twice, with an
#                 empty compilation cache and then warm, each timed
# each stage under `timeout`, and write everything into one archive, $OUT/gpu_check.tar.gz (OUT defaults to
# ./out), with its summary also in $OUT/gpu_check_summary.md and printed last.
#
#   bash benchmarks/gpu_check.sh                      # on a GPU machine: the whole check (about 7.5 minutes)
#   bash benchmarks/gpu_check.sh --device cpu --quick --no-install   # the same stages, small, on the CPU
#
# Options: --device gpu|cpu (default gpu; cpu sets JAX_PLATFORMS=cpu for every stage), --quick (a test subset,
# a smoke benchmark, two quick chapters: a few minutes on a CPU), --no-install, --budget SECONDS (default 450;
# stage 5's full chapters use what the earlier stages leave), --chapters "1 2 3 5 7 6 4" (full chapters, in
# this order, each started only with at least 30 s left), --book (stage 5 as the whole book, cold then warm
# cache; BOOK_CACHE names the cache folder, to keep it for later commands), --no-tests, --runs (add the benchmark's many-runs rows), --workloads "W1 W2 W3 W5 W4" (the benchmark's
# workloads; "" for the many-runs rows alone). PYTHON picks the interpreter (default python3).
set -u -o pipefail

DEVICE=gpu QUICK=0 INSTALL=1 BUDGET=450 CHAPTERS="1 2 3 5 7 6 4" BOOK=0 TESTS_ON=1 RUNS=0 WORKLOADS="W1 W2 W3 W5 W4"
while [ $# -gt 0 ]; do
    case "$1" in
        --device) DEVICE="$2"; shift 2 ;;
        --quick) QUICK=1; shift ;;
        --no-install) INSTALL=0; shift ;;
        --budget) BUDGET="$2"; shift 2 ;;
        --chapters) CHAPTERS="$2"; shift 2 ;;
        --book) BOOK=1; shift ;;
        --no-tests) TESTS_ON=0; shift ;;
        --runs) RUNS=1; shift ;;
        --workloads) WORKLOADS="$2"; shift 2 ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "gpu_check.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$DEVICE" in gpu|cpu) ;; *) echo "gpu_check.sh: --device must be gpu or cpu, got $DEVICE" >&2; exit 2 ;; esac

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-$ROOT/out}"
PY="${PYTHON:-python3}"
WORK="$(mktemp -d)/gpu_check"
mkdir -p "$OUT" "$WORK"
cd "$ROOT" || exit 2
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
[ "$DEVICE" = cpu ] && export JAX_PLATFORMS=cpu
START=$(date +%s)
SUMMARY="$WORK/summary.md"
echo "| stage | exit | seconds | note |" > "$WORK/stages.md"
echo "|---|---:|---:|---|" >> "$WORK/stages.md"

elapsed() { echo $(( $(date +%s) - START )); }
left() { echo $(( BUDGET - $(elapsed) )); }

# stage NAME CAP NOTE -- COMMAND...: run COMMAND under `timeout min(CAP, time left)`, log to $WORK/NAME.log
stage() {
    local name="$1" cap="$2" note="$3"; shift 4
    local limit t0 rc
    limit=$(left); [ "$cap" -lt "$limit" ] && limit=$cap
    if [ "$limit" -lt 10 ]; then
        echo "| $name | - | 0 | skipped: budget spent |" >> "$WORK/stages.md"; return 0
    fi
    echo "=== [$(elapsed) s] $name (limit $limit s): $*"
    t0=$(date +%s)
    timeout -k 10 "$limit" bash -c '"$@"' _ "$@" > "$WORK/$name.log" 2>&1  # a program or an exported function
    rc=$?
    [ $rc -eq 124 ] && note="$note; TIMED OUT at $limit s"
    echo "| $name | $rc | $(( $(date +%s) - t0 )) | $note |" >> "$WORK/stages.md"
    tail -n 3 "$WORK/$name.log"
    return 0
}

if [ "$QUICK" = 1 ]; then
    CAP_TESTS=180 CAP_BENCH=200 CAP_REPRO=150
    TESTS=(tests/ops/test_conv.py::test_the_two_implementations_agree_in_float32_under_jit
           tests/benchmarks/test_benchmark.py::test_gpu_error_names_the_framework_that_sees_no_gpu
           tests/benchmarks/test_benchmark.py::test_worker_environment_per_device_and_precision)
    BENCH="--quick --repeats 1"
    REPRO=(--quick --chapters 1 2)
    CHAPTERS=""
else
    CAP_TESTS=150 CAP_BENCH=170 CAP_REPRO=100
    # the chapter scripts' own quick runs are stage 5's job
    TESTS=(tests --deselect tests/experiments/test_ch04.py::test_ch04_quick
           --deselect tests/experiments/test_ch05.py::test_ch05_quick
           --deselect tests/experiments/test_ch06.py::test_ch06_quick
           --deselect tests/experiments/test_ch07.py::test_ch07_quick
           --deselect tests/experiments/test_ch01_03.py::test_ch01_reproduces_the_books_checks
           --deselect tests/experiments/test_ch01_03.py::test_ch02_reproduces_the_books_figures_with_its_gradients
           --deselect tests/experiments/test_ch01_03.py::test_ch03_quick_run_rows
           --deselect tests/harness/test_cli.py::test_the_installed_command_runs_a_real_chapter
           --deselect tests/benchmarks/test_benchmark.py::test_benchmark_quick)
    BENCH="--repeats 3 --shared-workers"
    REPRO=(--quick)
fi

# ---------------------------------------------------------------------------------------------- 1. env
env_report() {
    echo "date: $(date -u +%FT%TZ)"; echo "device asked: $DEVICE; quick: $QUICK; budget: $BUDGET s"
    echo "host: $(uname -a)"; echo "cores: $(nproc)"
    (git -C "$ROOT" rev-parse HEAD && git -C "$ROOT" status --short | head -20) 2>/dev/null || echo "git: no repository"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,temperature.gpu \
        --format=csv || echo "nvidia-smi: not found"
    "$PY" - <<'EOF'
import importlib, json, platform, sys
print("python", platform.python_version(), sys.executable)
for m in ("jax", "jaxlib", "optax", "numpy", "torch", "pytest", "hypothesis", "xdist", "pytest_benchmark"):
    try:
        print(m, getattr(importlib.import_module(m), "__version__", "installed"))
    except Exception as e:
        print(m, "missing:", type(e).__name__)
try:
    import jax
    d = jax.devices()
    print("jax devices:", d, "| kind:", d[0].device_kind, "| default backend:", jax.default_backend())
except Exception as e:
    print("jax devices: error", e)
try:
    import torch
    ok = torch.cuda.is_available()
    print("torch cuda:", ok, torch.version.cuda, torch.cuda.get_device_name(0) if ok else "")
except Exception as e:
    print("torch:", type(e).__name__, e)
EOF
}
export -f env_report
export DEVICE QUICK BUDGET PY WORK ROOT BENCH RUNS WORKLOADS
stage env 60 "machine and versions" -- env_report

# ------------------------------------------------------------------------------------------ 2. install
install() {
    if [ "$DEVICE" = gpu ] && ! "$PY" -c "import jax, sys; sys.exit(jax.default_backend() != 'gpu')" 2>/dev/null; then
        echo "jax sees no GPU: pip install -U 'jax[cuda12]'"
        "$PY" -m pip install -q -U "jax[cuda12]" || echo "jax[cuda12] install FAILED (offline machine?)"
    fi
    if "$PY" -c "import jax, optax, numpy, pytest, hypothesis" 2>/dev/null; then
        echo "fdl's dependencies are importable: nothing to install (fdl runs from $ROOT)"
    elif "$PY" -c "import torch" 2>/dev/null; then
        "$PY" -m pip install -q -e ".[dev]" || echo "pip install -e .[dev] FAILED"
    else  # the bench extra pins torch 2.13.0: PyPI's Linux wheel is a CUDA build (a /etc/xdg/pip cap allows it)
        "$PY" -m pip install -q -e ".[dev,bench]" || echo "pip install -e .[dev,bench] FAILED"
    fi
}
export -f install
if [ "$INSTALL" = 1 ]; then stage install 200 "jax[cuda12] / fdl deps if missing" -- install
else echo "| install | - | 0 | skipped (--no-install) |" >> "$WORK/stages.md"; fi

# -------------------------------------------------------------------------------------------- 3. tests
XDIST=()
if "$PY" -c "import xdist" 2>/dev/null; then
    n=$(nproc); [ "$n" -gt 8 ] && n=8; [ "$n" -ge 2 ] && XDIST=(-n "$n")
fi
# several test processes share the GPU: no process may take 75 % of its memory up front
export XLA_PYTHON_CLIENT_PREALLOCATE=false
if [ "$TESTS_ON" = 1 ]; then
    stage tests "$CAP_TESTS" "pytest ${XDIST[*]}" -- \
        "$PY" -m pytest -q -rfE -p no:cacheprovider "${XDIST[@]}" --junitxml="$WORK/tests.xml" "${TESTS[@]}"
else echo "| tests | - | 0 | skipped (--no-tests) |" >> "$WORK/stages.md"; fi
unset XLA_PYTHON_CLIENT_PREALLOCATE

# ---------------------------------------------------------------------------------------- 4. benchmark
bench() {
    # W4 apart: if capturing nn.LSTM (cuDNN) as a CUDA graph fails, only W4 is rerun without that row
    # shellcheck disable=SC2086  # BENCH is a list of options
    local rc=0 first="${WORKLOADS/W4/}"
    [ "$QUICK" = 1 ] && first="W5 W1"
    if [ "$RUNS" = 1 ]; then  # many runs as one program: S = 1, 3, 10, 30 runs of W1 and W3 against one alone
        "$PY" -m benchmarks --device "$DEVICE" --out "$WORK/benchmark_runs" --runs 1 3 10 30 \
            --workloads W1 W3 --repeats 3 || rc=1
    fi
    if [ -n "${first// /}" ]; then
        "$PY" -m benchmarks --device "$DEVICE" --out "$WORK/benchmark" $BENCH --workloads $first || rc=1
    fi
    [ "$QUICK" = 1 ] || [[ "$WORKLOADS" != *W4* ]] && return $rc
    "$PY" -m benchmarks --device "$DEVICE" --out "$WORK/benchmark_W4" $BENCH --workloads W4 && return $rc
    [ "$DEVICE" = gpu ] || return 1
    echo "=== W4 failed; again without PyTorch's CUDA-graph row"
    "$PY" -m benchmarks --device gpu --out "$WORK/benchmark_W4" $BENCH --workloads W4 \
        --impls fdl fdl-autodiff fdl-step torch
    return 1
}
export -f bench
stage benchmark "$CAP_BENCH" "python -m benchmarks --device $DEVICE $BENCH" -- bench

# ---------------------------------------------------------------------------------------- 5. reproduce
book() {  # the whole book, timed, with the compilation cache in $BOOK_CACHE (default $WORK/jax_cache, new)
    local t0=$(date +%s)
    FDL_JAX_CACHE="${BOOK_CACHE:-$WORK/jax_cache}" "$PY" -m fdl reproduce --out "$WORK/$1"
    echo "the whole book ($1) finished in $(( $(date +%s) - t0 )) s"
}
export -f book
if [ "$BOOK" = 1 ]; then
    stage book_cold "$(( $(left) * 3 / 5 ))" "fdl reproduce (every chapter, full), empty compilation cache" -- \
        book book_cold
    stage book_warm "$(( $(left) - 5 ))" "fdl reproduce (every chapter, full), warm compilation cache" -- \
        book book_warm
    CHAPTERS=""
else
stage reproduce_quick "$CAP_REPRO" "fdl reproduce ${REPRO[*]}" -- \
    "$PY" -m fdl reproduce --out "$WORK/reproduce_quick" "${REPRO[@]}"
for ch in $CHAPTERS; do
    if [ "$(left)" -lt 30 ]; then
        echo "| ch$ch | - | 0 | not started: $(left) s left |" >> "$WORK/stages.md"; continue
    fi
    stage "ch$ch" "$(( $(left) - 5 ))" "fdl reproduce --chapters $ch (full)" -- \
        "$PY" -m fdl reproduce --chapters "$ch" --out "$WORK/reproduce"
done
fi

# ------------------------------------------------------------------------------------------ summary
{
    echo "# fdl gpu_check: device $DEVICE, quick $QUICK, $(elapsed) s of $BUDGET"
    echo; grep -E "^(nvidia|NVIDIA|python |jax |jaxlib |torch|jax devices|cores|name)" "$WORK/env.log"
    echo; cat "$WORK/stages.md"
    echo; echo "## tests"; grep -E "(passed|failed|error)" "$WORK/tests.log" | tail -n 1
    grep -E "^(FAILED|ERROR) " "$WORK/tests.log" | head -n 20
    [ -f "$WORK/benchmark_runs/runs.md" ] && { echo; echo "## many runs as one program"; cat "$WORK/benchmark_runs/runs.md"; }
    for b in benchmark benchmark_W4; do
        [ -f "$WORK/$b/table.md" ] || continue
        echo; echo "## $b (ms per training step)"; cat "$WORK/$b/table.md"
        "$PY" - "$WORK/$b/results.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print("\nmachine:", json.dumps(r["machine"]), "| precision:", r.get("precision"))
impls = ["fdl", "fdl-autodiff", "fdl-step", "torch", "torch-graphs"]
print("\n| workload | " + " | ".join(impls) + " |")
print("|---|" + "---:|" * len(impls))
for name, w in r["workloads"].items():
    rows = w["implementations"]
    print(f"| {name} | " + " | ".join(f"{rows[i]['ms_per_step']:.3f}" if i in rows else "-" for i in impls) + " |")
EOF
    done
    for d in reproduce_quick reproduce book_cold book_warm; do
        [ -f "$WORK/$d/results.json" ] || continue
        echo; echo "## $d"
        "$PY" -c "
import json, sys
rows = json.load(open(sys.argv[1]))
for r in rows['results'] if isinstance(rows, dict) else rows:
    print(f\"| {r['chapter']} | {r['name']} | {r['metric']} | {r.get('book')} | {r['value']} |\")" "$WORK/$d/results.json"
    done
    echo; echo "chapter times:"; grep -h "finished in" "$WORK"/reproduce*.log "$WORK"/ch*.log "$WORK"/book*.log 2>/dev/null
} > "$SUMMARY" 2>&1

tar -czf "$OUT/gpu_check.tar.gz" -C "$(dirname "$WORK")" gpu_check
cp "$SUMMARY" "$OUT/gpu_check_summary.md"
cat "$SUMMARY"
echo; echo "archive: $OUT/gpu_check.tar.gz ($(du -h "$OUT/gpu_check.tar.gz" | cut -f1)); $(elapsed) s in all"
