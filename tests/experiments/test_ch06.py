"""experiments/ch06_rnn.py --quick runs end to end and writes results.json."""

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ch06_quick(tmp_path):
    proc = subprocess.run(
        [sys.executable, "experiments/ch06_rnn.py", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {r["name"]: r for r in json.loads((tmp_path / "results.json").read_text())["results"]}
    baseline = rows.pop("unigram baseline (character frequencies)")["value"]
    assert 2.5 < baseline < 4.5
    assert set(rows) == {
        "LSTM | AdaGrad 0.01 (book)",
        "GRU->LSTM | AdaGrad 0.01 (book)",
        "LSTM | Adam 2e-3, Glorot init (fdl)",
    }
    for row in rows.values():
        assert row["metric"] == "ce" and math.isfinite(row["value"]), row
        assert row["value"] < math.log(62) + 0.2, row  # no worse than guessing among the quick text's characters
    assert rows["LSTM | AdaGrad 0.01 (book)"]["value"] < math.log(62) - 0.3  # it learns within 30 steps
    assert "GRU weights with an all-zero gradient: none" in proc.stdout
    assert "sample:" in proc.stdout


def test_ch06_quick_seeds_train_together(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "experiments/ch06_rnn.py",
            "--quick",
            "--seeds",
            "2",
            "--configs",
            "LSTM |",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((tmp_path / "results.json").read_text())
    names = ["LSTM | AdaGrad 0.01 (book)", "LSTM | Adam 2e-3, Glorot init (fdl)"]
    assert {r["name"] for r in data["results"]} == {"unigram baseline (character frequencies)", *names}
    # seed 0 + the position in the list, then + 6 (the number of configurations) for each further seed
    assert data["meta"]["seeds"] == {names[0]: [0, 6], names[1]: [1, 7]}
    for row in data["results"]:
        assert row["metric"] == "ce" and math.isfinite(row["value"]), row
    assert "(2 runs)" in proc.stdout and " ± " in proc.stdout and "ms per step of the 2 runs together" in proc.stdout
    assert "sample:" in proc.stdout
