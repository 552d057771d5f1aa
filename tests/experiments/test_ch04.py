"""experiments/ch04_extensions.py --quick: the whole ladder runs on a subset and writes results.json."""

import json
import subprocess
import sys
from pathlib import Path

from fdl.harness.book import CH04

ROOT = Path(__file__).resolve().parents[2]


def test_ch04_quick(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "experiments/ch04_extensions.py"), "--quick", "--out",
                           str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {r["name"]: r for r in json.loads((tmp_path / "results.json").read_text())["results"]}
    assert set(rows) == set(CH04)
    assert all(r["metric"] == "accuracy" and 0 <= r["value"] <= 100 for r in rows.values())
    assert "Validation loss after 1 epochs" in proc.stdout and "| configuration" in proc.stdout
    # Three epochs on 3000 images already separate the rungs: Glorot + momentum learns fast.
    assert rows["+ glorot, linear decay"]["value"] > 70
    assert rows["softmax CE"]["value"] > rows["tanh + sigmoid, MSE"]["value"]
