"""experiments/benchmark.py --quick runs end to end: its JSON and table have every workload and implementation,
and the implementations, started from the same weights on the same batches, end with the same loss.

No timing is asserted: the numbers of a smoke run on a shared machine mean nothing.
"""

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = ["W1", "W2", "W3", "W4", "W5"]


def test_benchmark_quick(tmp_path):
    proc = subprocess.run([sys.executable, "experiments/benchmark.py", "--quick", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    impls = ["fdl", "fdl-autodiff", "fdl-step"] + (["torch"] if importlib.util.find_spec("torch") else [])
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["quick"] is True and results["repeats"] >= 3
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
        for key, other in (("manual/autodiff", "fdl-autodiff"), ("fdl/torch", "torch")):
            if other in rows:
                ratio = w["ratios"][key]
                assert math.isclose(ratio["value"], rows["fdl"]["ms_per_step"] / rows[other]["ms_per_step"]), name
                assert (ratio["met"] is None) == (ratio["target"] is None) == (name == "W5"), (name, key)
    assert results["workloads"]["W5"]["implementations"]["fdl"]["steps_per_unit"] == 2 * 12  # 354 rows, batch 32
    table = (tmp_path / "table.md").read_text()
    assert "| workload | implementation | ms/step (median) |" in table
    for name in WORKLOADS:
        assert f"| {name} | PyTorch eager |" in table or "torch" not in impls
        assert f"| {name} | fdl (hand-written VJPs, scanned epoch) |" in table
    assert "max relative difference" in proc.stdout
