"""experiments/ch04_extensions.py --quick: the whole ladder runs on a subset and writes results.json; with
--seeds each rung's seeds train together as one fit call."""

import json
import subprocess
import sys
from pathlib import Path

from fdl.harness.book import CH04

ROOT = Path(__file__).resolve().parents[2]


def test_ch04_quick(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "experiments/ch04_extensions.py"), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    rows = {
        r["name"][: -len(" (fdl rule)")]: r
        for r in results
        if r["name"].endswith(" (fdl rule)") and r["metric"] == "accuracy"
    }
    book_rule = {r["name"] for r in results if r["name"].endswith(" (book rule)") and r["metric"] == "accuracy"}
    assert set(rows) == set(CH04) and book_rule == {f"{name} (book rule)" for name in CH04}
    assert all(0 <= r["value"] <= 100 for r in rows.values())
    assert "Validation loss after 1 epochs" in proc.stdout and "| configuration" in proc.stdout
    # Three epochs on 3000 images already separate the rungs: Glorot + momentum learns fast.
    assert rows["+ glorot, linear decay"]["value"] > 70
    assert rows["softmax CE"]["value"] > rows["tanh + sigmoid, MSE"]["value"]


def test_ch04_quick_rungs_train_their_seeds_together(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "experiments/ch04_extensions.py"),
            "--quick",
            "--seeds",
            "2",
            "--rows",
            "3",
            "--seed",
            "7",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["meta"]["seeds"] == [7, 8]
    assert [(r["name"], r["metric"]) for r in data["results"]] == [
        ("+ momentum (fdl rule)", "accuracy"),
        ("+ momentum (fdl rule)", "sd"),
        ("+ momentum (book rule)", "accuracy"),
        ("+ momentum (book rule)", "sd"),
        ("+ momentum", "seconds"),
    ]
    assert 30 < data["results"][0]["value"] <= 100
    for seed in (7, 8):  # each run's lines are named by its seed, one run's lines after another's
        assert f"seed {seed}: Validation loss after 3 epochs is" in proc.stdout
        assert f"seed {seed}: The model validation accuracy is:" in proc.stdout
    assert "--- + momentum (seeds 7..8)" in proc.stdout and "fdl's rule (2 seeds)" in proc.stdout
    assert "the book's rule (2 seeds)" in proc.stdout and "the epoch whose params each rule returns" in proc.stdout


def test_ch04_refuses_zero_seeds():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "experiments/ch04_extensions.py"), "--seeds", "0"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and "--seeds: expected a whole number of at least 1" in proc.stderr
