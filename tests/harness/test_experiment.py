"""results.json records its run (command line, quick or full, seed, versions, device, date); quick tables are
marked as smoke runs; --progress says once when tqdm is missing."""

import datetime
import importlib.util
import json
import sys

import jax
import jaxlib
import pytest

import fdl
from fdl.harness import experiment
from fdl.harness.experiment import Results, enable_progress, parse_args, read_results


@pytest.fixture(autouse=True)
def _forget_parsed_args(monkeypatch):
    monkeypatch.setattr(experiment, "_last_args", None)  # parse_args records its result module-wide


def test_results_json_records_the_run(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["ch09_demo.py", "--quick", "--seed", "7"])
    args = parse_args("demo", ["--quick", "--seed", "7", "--out", str(tmp_path)])
    results = Results("ch09")
    results.add("model", "accuracy", 91.5, book=90.0)
    results.meta["seeds"] = [7, 8]
    path = results.write(args.out)
    saved = json.loads(path.read_text())
    meta = saved["meta"]
    assert saved["results"] == [{"name": "model", "metric": "accuracy", "value": 91.5, "book": 90.0}]
    assert meta["chapter"] == "ch09" and meta["argv"] == ["ch09_demo.py", "--quick", "--seed", "7"]
    assert meta["quick"] is True and meta["seed"] == 7 and meta["seeds"] == [7, 8]
    assert meta["options"]["out"] == str(tmp_path)
    assert meta["versions"] == {
        "fdl": fdl.__version__,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "python": sys.version.split()[0],
    }
    assert meta["device"]["platform"] == jax.devices()[0].platform
    assert meta["device"]["kind"] == jax.devices()[0].device_kind
    date = datetime.datetime.fromisoformat(meta["date"])
    assert date.utcoffset() == datetime.timedelta(0)
    assert abs((datetime.datetime.now(datetime.UTC) - date).total_seconds()) < 600
    assert read_results(path) == (meta, saved["results"])


def test_quick_table_is_a_smoke_run_without_the_book_column():
    parse_args("demo", ["--quick"])
    results = Results("ch09")
    results.add("model", "accuracy", 91.5, book=90.0)
    lines = results.table().splitlines()
    assert lines[0] == "smoke run on a subset (--quick): not comparable with the book; run without --quick for that"
    assert [c.strip() for c in lines[1].split("|")[1:-1]] == ["configuration", "metric", "fdl (smoke run)"]
    full = Results("ch09", parse_args("demo", []))
    full.add("model", "accuracy", 91.5, book=90.0)
    assert [c.strip() for c in full.table().splitlines()[0].split("|")[1:-1]] == [
        "configuration",
        "metric",
        "book",
        "fdl",
    ]


def test_read_results_accepts_fdl_01_files_and_refuses_others(tmp_path):
    (tmp_path / "old.json").write_text(json.dumps([{"name": "a", "metric": "mse", "value": 1.0, "book": None}]))
    assert read_results(tmp_path / "old.json") == ({}, [{"name": "a", "metric": "mse", "value": 1.0, "book": None}])
    (tmp_path / "bad.json").write_text(json.dumps({"rows": []}))
    with pytest.raises(ValueError, match="bad.json: not an fdl results.json"):
        read_results(tmp_path / "bad.json")


def test_progress_without_tqdm_says_so_once(monkeypatch):
    monkeypatch.delenv("FDL_PROGRESS", raising=False)
    monkeypatch.delenv("FDL_PROGRESS_NOTED", raising=False)
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tqdm" else find_spec(name, *a))
    said = []
    enable_progress(said.append)
    enable_progress(said.append)
    assert said == [
        "fdl: tqdm is not installed, so --progress prints a line per epoch instead of a bar "
        "(pip install tqdm, or fdl[progress], for bars)"
    ]
    assert experiment.os.environ["FDL_PROGRESS"] == "1"


def test_progress_flag_sets_the_environment(monkeypatch):
    monkeypatch.delenv("FDL_PROGRESS", raising=False)
    monkeypatch.setenv("FDL_PROGRESS_NOTED", "1")
    assert parse_args("demo", ["--progress"]).progress
    assert experiment.os.environ["FDL_PROGRESS"] == "1"


def test_a_scripts_own_table_drops_the_book_columns_in_a_quick_run():
    header, rows = ["model", "MAE", "book", "RMSE", "book (text)"], [["linear", 3.5, 3.56, 5.0, 5.04]]
    parse_args("demo", ["--quick"])
    lines = experiment.format_table(header, rows).splitlines()
    assert lines[0] == experiment.SMOKE_NOTE
    assert [c.strip() for c in lines[1].split("|")[1:-1]] == ["model", "MAE", "RMSE"]
    assert [c.strip() for c in lines[3].split("|")[1:-1]] == ["linear", "3.5", "5.0"]
    parse_args("demo", [])
    full = experiment.format_table(header, rows).splitlines()
    assert [c.strip() for c in full[0].split("|")[1:-1]] == header
    assert experiment.format_table(header, rows, quick=True).splitlines()[0] == experiment.SMOKE_NOTE


def test_a_script_whose_quick_changes_nothing_keeps_the_book_column(tmp_path):
    args = parse_args("demo", ["--quick", "--out", str(tmp_path)], quick_is_full=True)
    results = Results("ch01")
    results.add("L", "value", 2.3755, book=2.3755)
    assert [c.strip() for c in results.table().splitlines()[0].split("|")[1:-1]] == [
        "configuration",
        "metric",
        "book",
        "fdl",
    ]
    meta = json.loads(results.write(args.out).read_text())["meta"]
    assert meta["quick"] is True and meta["smoke"] is False
