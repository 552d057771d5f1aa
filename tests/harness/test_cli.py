"""The ``fdl`` command: run, reproduce and benchmark start the scripts and collect their results."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fdl.harness import cli

ROOT = Path(__file__).resolve().parents[2]


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
    return d


@pytest.fixture
def fake_benchmarks(tmp_path):
    """A stand-in benchmark package (run as ``python -m benchmarks``) that records its arguments."""
    d = tmp_path / "benchmarks"
    d.mkdir()
    (d / "__main__.py").write_text(
        "import json, sys, pathlib\n"
        "out = pathlib.Path(sys.argv[sys.argv.index('--out') + 1]); out.mkdir(parents=True, exist_ok=True)\n"
        "(out / 'argv.json').write_text(json.dumps(sys.argv[1:]))\n"
    )
    return d


def test_run_passes_quick_seed_and_extra_arguments(fake_experiments, tmp_path, capsys):
    out = tmp_path / "one"
    code = cli.main(
        [
            "run",
            "ch2",
            "--quick",
            "--seed",
            "7",
            "--out",
            str(out),
            "--experiments",
            str(fake_experiments),
            "--extra",
            "x",
        ]
    )
    assert code == 0
    assert json.loads((out / "argv.json").read_text()) == ["--out", str(out), "--quick", "--seed", "7", "--extra", "x"]
    assert "ch02_two.py finished" in capsys.readouterr().out


def test_reproduce_collects_every_chapter_and_reports_failures(fake_experiments, tmp_path, capsys):
    out = tmp_path / "all"
    code = cli.main(["reproduce", "--quick", "--out", str(out), "--experiments", str(fake_experiments)])
    assert code == 1  # ch03_broken exits 3
    saved = json.loads((out / "results.json").read_text())
    rows = saved["results"]
    assert [(r["chapter"], r["value"]) for r in rows] == [("ch01", 0.5), ("ch02", 0.25)]
    assert saved["meta"]["quick"] is True and saved["meta"]["chapters"] == {"ch01": {}, "ch02": {}}
    captured = capsys.readouterr()
    assert "failed: ch03_broken.py (exit 3)" in captured.err
    assert "| ch01" in captured.out


def test_quick_reproduce_table_is_a_smoke_run_without_the_book_column(fake_experiments, tmp_path, capsys):
    cli.main(["reproduce", "--quick", "--out", str(tmp_path / "q"), "--experiments", str(fake_experiments)])
    out = capsys.readouterr().out
    assert "smoke run on a subset (--quick): not comparable with the book" in out
    header = next(line for line in out.splitlines() if line.startswith("| chapter"))
    assert [c.strip() for c in header.strip("|").split("|")] == [
        "chapter",
        "configuration",
        "metric",
        "fdl (smoke run)",
    ]


def test_full_reproduce_table_sets_fdl_beside_the_book(fake_experiments, tmp_path, capsys):
    cli.main(["reproduce", "--out", str(tmp_path / "f"), "--experiments", str(fake_experiments)])
    out = capsys.readouterr().out
    assert "smoke run" not in out
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in out.splitlines() if line.startswith("| ")]
    assert cells == [
        ["chapter", "configuration", "metric", "book", "fdl"],
        ["ch01", "row", "acc", "1.00", "0.5"],
        ["ch02", "row", "acc", "1.00", "0.25"],
    ]


def test_run_help_lists_the_chapters_and_how_to_see_a_scripts_options(capsys):
    assert cli.main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    for chapter in ("ch01", "ch02", "ch03", "ch04", "ch05", "ch06", "ch07"):
        assert f"\n  {chapter}  Chapter" in out
    assert "A script's own options: fdl run chNN --help" in out


def test_run_chapter_help_shows_the_scripts_own_options(capfd):
    assert cli.main(["run", "ch02", "--help"]) == 0
    out = capfd.readouterr().out
    assert "usage: ch02_fundamentals.py" in out and "--progress" in out


def test_run_without_a_chapter_prints_help_and_fails(capsys):
    assert cli.main(["run"]) == 2
    assert "chapters:" in capsys.readouterr().out


def test_missing_scripts_say_where_to_get_them(monkeypatch, tmp_path):
    monkeypatch.delenv("FDL_EXPERIMENTS", raising=False)
    monkeypatch.setattr(cli, "_packaged", lambda: None)
    monkeypatch.setattr(cli, "__file__", str(tmp_path / "fdl" / "cli.py"))
    with pytest.raises(SystemExit, match=r"cannot find the experiment scripts .*reinstall fdl .*--experiments"):
        cli.experiments_dir()


def test_unknown_chapter_names_the_available_ones(fake_experiments):
    with pytest.raises(SystemExit, match="no experiment for ch09; available: ch01, ch02, ch03"):
        cli.main(["run", "ch09", "--experiments", str(fake_experiments)])


def test_benchmark_forwards_its_arguments(fake_benchmarks, tmp_path, monkeypatch):
    out = tmp_path / "bench"
    monkeypatch.chdir(tmp_path.parent)  # python -m finds the package from any working directory
    code = cli.main(
        ["benchmark", "--quick", "--out", str(out), "--benchmarks", str(fake_benchmarks), "--workloads", "W1", "W4"]
    )
    assert code == 0
    assert json.loads((out / "argv.json").read_text()) == ["--out", str(out), "--quick", "--workloads", "W1", "W4"]


def test_benchmark_help_lists_the_options_it_passes_on(capsys):
    assert cli.main(["benchmark", "--help"]) == 0
    out = capsys.readouterr().out
    assert "usage: fdl benchmark" in out and "Options passed on to the benchmark" in out
    for option in (
        "--workloads",
        "--impls",
        "--device",
        "--precision",
        "--repeats",
        "--shared-workers",
        "--conv-impl",
        "--runs",
    ):
        assert option in out, option
    assert "{W1,W2,W3,W4,W5}" in out and "--worker" not in out


def test_missing_benchmark_says_where_to_get_it(monkeypatch, tmp_path):
    monkeypatch.delenv("FDL_BENCHMARKS", raising=False)
    monkeypatch.setattr(cli, "__file__", str(tmp_path / "fdl" / "harness" / "cli.py"))
    with pytest.raises(SystemExit, match=r"cannot find the benchmark .*source tree only .*--benchmarks"):
        cli.main(["benchmark", "--quick"])


def test_the_installed_command_runs_a_real_chapter(tmp_path):
    """``python -m fdl run ch01 --quick`` end to end (chapter 1 takes seconds)."""
    out = tmp_path / "ch01"
    proc = subprocess.run(
        [sys.executable, "-m", "fdl", "run", "ch01", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    saved = json.loads((out / "results.json").read_text())
    assert saved["meta"]["quick"] is True and saved["meta"]["chapter"] == "ch01" and saved["results"]
