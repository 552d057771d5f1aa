"""The ``fdl`` command: run, reproduce and benchmark start the scripts and collect their results."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fdl import cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def fake_experiments(tmp_path):
    """A directory of stand-in scripts that record their arguments and write a results.json."""
    d = tmp_path / "experiments"
    d.mkdir()
    script = (
        "import json, sys, pathlib\n"
        "out = pathlib.Path(sys.argv[sys.argv.index('--out') + 1]); out.mkdir(parents=True, exist_ok=True)\n"
        "(out / 'argv.json').write_text(json.dumps(sys.argv[1:]))\n"
        "(out / 'results.json').write_text(json.dumps([{{'name': 'row', 'metric': 'acc', 'value': {v}, "
        "'book': 1.0}}]))\n"
        "sys.exit({code})\n"
    )
    (d / "ch01_one.py").write_text(script.format(v=0.5, code=0))
    (d / "ch02_two.py").write_text(script.format(v=0.25, code=0))
    (d / "ch03_broken.py").write_text(script.format(v=0.0, code=3))
    (d / "benchmark.py").write_text(script.format(v=0.0, code=0))
    return d


def test_run_passes_quick_seed_and_extra_arguments(fake_experiments, tmp_path, capsys):
    out = tmp_path / "one"
    code = cli.main(["run", "ch2", "--quick", "--seed", "7", "--out", str(out), "--experiments",
                     str(fake_experiments), "--extra", "x"])
    assert code == 0
    assert json.loads((out / "argv.json").read_text()) == ["--out", str(out), "--quick", "--seed", "7", "--extra", "x"]
    assert "ch02_two.py finished" in capsys.readouterr().out


def test_reproduce_collects_every_chapter_and_reports_failures(fake_experiments, tmp_path, capsys):
    out = tmp_path / "all"
    code = cli.main(["reproduce", "--quick", "--out", str(out), "--experiments", str(fake_experiments)])
    assert code == 1  # ch03_broken exits 3
    rows = json.loads((out / "results.json").read_text())
    assert [(r["chapter"], r["value"]) for r in rows] == [("ch01", 0.5), ("ch02", 0.25)]
    captured = capsys.readouterr()
    assert "failed: ch03_broken.py (exit 3)" in captured.err
    assert "| ch01" in captured.out


def test_unknown_chapter_names_the_available_ones(fake_experiments):
    with pytest.raises(SystemExit, match="no experiment for ch09; available: ch01, ch02, ch03"):
        cli.main(["run", "ch09", "--experiments", str(fake_experiments)])


def test_benchmark_forwards_its_arguments(fake_experiments, tmp_path):
    out = tmp_path / "bench"
    code = cli.main(["benchmark", "--quick", "--out", str(out), "--experiments", str(fake_experiments),
                     "--workloads", "W1", "W4"])
    assert code == 0
    assert json.loads((out / "argv.json").read_text()) == ["--out", str(out), "--quick", "--workloads", "W1", "W4"]


def test_the_installed_command_runs_a_real_chapter(tmp_path):
    """``python -m fdl run ch01 --quick`` end to end (chapter 1 takes seconds)."""
    out = tmp_path / "ch01"
    proc = subprocess.run([sys.executable, "-m", "fdl", "run", "ch01", "--quick", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((out / "results.json").read_text())
