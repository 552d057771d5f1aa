"""experiments/ch05_cnn.py --quick: both CNNs train on a subset, log as the book, and write results.json."""

import json
import subprocess
import sys
from pathlib import Path

from fdl.harness.book import CH05

ROOT = Path(__file__).resolve().parents[2]


def test_ch05_quick(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "experiments/ch05_cnn.py"), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {(r["name"], r["metric"]): r for r in json.loads((tmp_path / "results.json").read_text())["results"]}
    rows = {name: r for (name, metric), r in rows.items() if metric in ("accuracy", "seconds")}
    for name, book in CH05.items():
        assert rows[name]["metric"] == "accuracy" and rows[name]["book"] == book
        # 10 batches of 60 images: far from the book's 90 %, but well above chance (10 %).
        assert 25 < rows[name]["value"] <= 100
        seconds = rows[f"{name}: seconds, all seeds"]
        assert seconds["metric"] == "seconds" and seconds["value"] > 0
    assert "Validation accuracy after 5 batches is" in proc.stdout
    assert "Model validation accuracy after 1 epoch is" in proc.stdout and "| configuration" in proc.stdout
