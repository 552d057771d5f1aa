"""python -m benchmarks --quick runs end to end: its JSON and table have every workload and implementation,
and the implementations, started from the same weights on the same batches, end with the same loss.
``--device gpu`` where no GPU is visible stops with a message that says what to install.

No timing is asserted: the numbers of a smoke run on a shared machine mean nothing.
"""

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import cli, compare, device, worker

ROOT = Path(__file__).resolve().parents[2]
WORKLOADS = ["W1", "W2", "W3", "W4", "W5"]


def test_benchmark_quick(tmp_path):
    # --device cpu: the workers run with JAX_PLATFORMS=cpu, so this is the CPU benchmark on a GPU machine too
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--device", "cpu", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    impls = ["fdl", "fdl-autodiff", "fdl-step"] + (["torch"] if importlib.util.find_spec("torch") else [])
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["quick"] is True and results["repeats"] >= 3
    assert results["device"] == results["machine"]["device"] == "cpu" and "gpu" not in results["machine"]
    assert results["precision"] == "default" and "CPU only" in proc.stdout
    assert results["machine"]["cores"] >= 1 and len(results["load_start"]) == 3 and len(results["load_end"]) == 3
    assert list(results["workloads"]) == WORKLOADS
    for name, w in results["workloads"].items():
        rows = w["implementations"]
        assert list(rows) == impls, name
        for impl, r in rows.items():
            where = f"{name}/{impl}"
            assert len(r["all_ms"]) == results["repeats"], where
            assert 0 < r["min_ms"] <= r["ms_per_step"] <= r["max_ms"], where
            assert r["steps_per_unit"] >= 1, where
            assert (r["compile_s"] is None) == (impl == "torch"), where
            assert impl == "torch" or r["compile_s"] > 0, where
            assert 0 < r["runtime_rss_mib"] <= r["peak_rss_mib"], where
            assert math.isfinite(r["final_loss"]) and math.isfinite(r["mean_loss"]), where
        # The check the benchmark prints: one start, one batch order, one final loss (float32 rounding apart).
        finals = [r["final_loss"] for r in rows.values()]
        assert max(finals) - min(finals) <= 1e-4 * abs(min(finals)), (name, finals)
        assert w["loss_check"]["max_rel_diff"] <= 1e-4, name
        assert {r["steps_per_unit"] for r in rows.values()} == {rows["fdl"]["steps_per_unit"]}, name
        targets = {
            "manual/autodiff": {"W1", "W4"},
            "autodiff/manual": {"W2", "W3"},
            "fdl/torch": {"W1", "W2", "W3", "W4"},
        }
        for key, (a, b) in (
            ("manual/autodiff", ("fdl", "fdl-autodiff")),
            ("autodiff/manual", ("fdl-autodiff", "fdl")),
            ("fdl/torch", ("fdl", "torch")),
        ):
            if a in rows and b in rows:
                ratio = w["ratios"][key]
                assert math.isclose(ratio["value"], rows[a]["ms_per_step"] / rows[b]["ms_per_step"]), name
                assert (ratio["met"] is None) == (ratio["target"] is None) == (name not in targets[key]), (name, key)
    assert results["workloads"]["W5"]["implementations"]["fdl"]["steps_per_unit"] == 2 * 12  # 354 rows, batch 32
    table = (tmp_path / "table.md").read_text()
    assert "| workload | implementation | ms/step (median) |" in table
    for name in WORKLOADS:
        assert f"| {name} | PyTorch eager |" in table or "torch" not in impls
        assert f"| {name} | fdl (hand-written VJPs, scanned epoch) |" in table
    assert "max relative difference" in proc.stdout


def test_device_gpu_without_a_gpu_says_what_to_install(monkeypatch, capsys):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # no GPU for jax or torch, on any machine
    with pytest.raises(SystemExit) as e:
        cli.main(["--device", "gpu", "--quick", "--workloads", "W5"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "no GPU visible to jax/torch" in err and "jax[cuda12]" in err and "--device cpu" in err, err


def test_gpu_error_names_the_framework_that_sees_no_gpu():
    gpu = {"platform": "gpu", "device_kind": "NVIDIA H200", "count": 1, "version": "0.11.2"}
    cuda_torch = {"version": "2.11.0", "cuda": "13.0", "available": True, "name": "NVIDIA H200"}
    cpu_torch = {"version": "2.13.0+cpu", "cuda": None, "available": False, "name": None}
    assert device.gpu_error({"jax": gpu, "torch": cuda_torch}, compare.IMPLS) is None
    assert device.gpu_error({"jax": gpu, "torch": None}, ["fdl", "fdl-autodiff"]) is None  # no PyTorch row asked
    msg = device.gpu_error({"jax": gpu, "torch": cpu_torch}, ["fdl", "torch"])
    assert msg.startswith("no GPU visible to torch: torch 2.13.0+cpu (CUDA None) sees no GPU")
    assert "CUDA build of PyTorch" in msg and "--impls fdl fdl-autodiff fdl-step" in msg
    assert "torch is not installed" in device.gpu_error({"jax": gpu, "torch": None}, ["torch-graphs"])
    cpu = {"platform": "cpu", "device_kind": "cpu", "count": 1, "version": "0.10.2"}
    msg = device.gpu_error({"jax": cpu, "torch": cuda_torch}, ["fdl"])
    assert msg.startswith("no GPU visible to jax/torch: jax.devices() gives cpu devices (cpu)"), msg
    broken = {"platform": None, "error": "RuntimeError: Unable to initialize backend 'cuda'"}
    assert "Unable to initialize backend 'cuda'" in device.gpu_error({"jax": broken, "torch": None}, ["fdl"])
    info = device.machine("gpu", {"jax": gpu, "torch": cuda_torch})
    assert (
        info["device"] == "gpu" and info["gpu"]["jax_device_kind"] == info["gpu"]["torch_device_name"] == "NVIDIA H200"
    )


def test_torch_graphs_is_refused_on_the_cpu(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--device", "cpu", "--impls", "fdl", "torch-graphs"])
    assert "torch-graphs captures CUDA graphs and needs --device gpu" in capsys.readouterr().err


def test_worker_environment_per_device_and_precision():
    env = worker.worker_env
    base = {"PATH": "/bin", "JAX_PLATFORMS": "cpu"}
    assert env("cpu", "default", {"PATH": "/bin"}) == {"PATH": "/bin", "JAX_PLATFORMS": "cpu"}
    assert env("gpu", "default", base) == {"PATH": "/bin", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    assert env("gpu", "highest", {"JAX_PLATFORMS": "cuda"}) == {
        "JAX_PLATFORMS": "cuda",
        "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
        "JAX_DEFAULT_MATMUL_PRECISION": "highest",
    }
    assert base == {"PATH": "/bin", "JAX_PLATFORMS": "cpu"}  # the caller's environment is not changed


def test_runs_trained_together_rows(tmp_path):
    """--runs: one run alone and S runs as one vmapped program, in ms per run-step; run 0 of each S draws the
    one run's batches from the same weights, so its warm-up loss is the one run's (float32 rounding apart)."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--runs",
            "1",
            "2",
            "--quick",
            "--workloads",
            "W1",
            "--repeats",
            "1",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "runs.json").read_text())
    assert results["runs"] == [1, 2] and list(results["workloads"]) == ["W1"]
    rows = results["workloads"]["W1"]["sizes"]
    assert list(rows) == ["alone", "1", "2"] and [r["runs"] for r in rows.values()] == [1, 1, 2]
    assert rows["alone"]["vs_alone"] == 1.0
    for key, r in rows.items():
        assert 0 < r["min_ms"] <= r["ms_per_run_step"] <= r["max_ms"], key
        assert math.isclose(r["vs_alone"], r["ms_per_run_step"] / rows["alone"]["ms_per_run_step"]), key
        assert r["steps_per_unit"] == rows["alone"]["steps_per_unit"] and r["compile_s"] > 0, key
        assert math.isfinite(r["final_loss_run0"]) and r["rel_diff_run0"] <= 1e-4, key
    assert "| W1 | 2 together |" in (tmp_path / "runs.md").read_text()


def test_runs_refuses_the_lstm_and_counts_below_one(capsys):
    for argv in (["--runs", "2", "--workloads", "W4"], ["--runs", "0"]):
        with pytest.raises(SystemExit):
            cli.main(argv)
        assert "--runs takes run counts of at least 1" in capsys.readouterr().err
