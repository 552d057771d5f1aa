"""The chapter 1-3 experiment scripts, run with --quick as a subprocess, and the ch. 3 models' two gradients."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from fdl.harness import book

ROOT = Path(__file__).resolve().parents[2]


def run_script(name: str, out: Path) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / name), "--quick", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    rows = json.loads((out / "results.json").read_text())["results"]
    assert rows and all(set(r) == {"name", "metric", "value", "book"} for r in rows)
    assert all(math.isfinite(r["value"]) for r in rows)
    return rows


def by_name(rows):
    return {(r["name"], r["metric"]): r for r in rows}


def test_ch01_reproduces_the_books_checks(tmp_path):
    rows = by_name(run_script("ch01_foundations.py", tmp_path))
    published = [(f"dS/dX[0,{i}] (seed 190203)", v) for i, v in enumerate(book.CH01["dS/dX (seed 190203)"])]
    published += [(k, book.CH01[k]) for k in ("L (seed 190204)", "dL/dX[0,0] (seed 190204)")]
    for name, want in published:
        row = rows[(name, "value")]
        assert row["book"] == want and round(row["value"], 4) == want, name
    agreement = [r for (name, _), r in rows.items() if "jax.grad" in name]
    assert len(agreement) == 5 and all(r["value"] < 1e-12 for r in agreement)


def test_ch02_reproduces_the_books_figures_with_its_gradients(tmp_path):
    rows = by_name(run_script("ch02_fundamentals.py", tmp_path))
    for name, key in (
        ("least squares", "least squares"),
        ("linear regression (book: summed gradients)", "linear regression"),
        ("two-layer net (book: summed gradients)", "two-layer net"),
    ):
        for metric in ("mae", "rmse"):
            row = rows[(name, metric)]
            assert row["book"] == book.CH02[key][metric]
            assert round(row["value"], 4) == row["book"], (name, metric)
    for name in (
        "linear regression (fdl: averaged gradients)",
        "two-layer net (fdl: averaged gradients)",
        "two-layer net (exact summed gradients)",
    ):
        assert 2.0 < rows[(name, "mae")]["value"] < rows[(name, "rmse")]["value"] < 7.0, name
    checks = [r for (name, _), r in rows.items() if "jax.grad" in name]
    assert len(checks) == 2 and all(r["value"] < 1e-10 for r in checks)


def test_ch03_quick_run_rows(tmp_path):
    rows = run_script("ch03_deep_learning.py", tmp_path)
    assert {r["name"] for r in rows} == set(book.CH03)
    table = by_name(rows)
    for name, want in book.CH03.items():
        for metric in ("mae", "rmse"):
            assert table[(name, metric)]["book"] == want[metric]
        # well ahead of predicting the training mean (test MAE 6.95, RMSE 9.56) after the quick 10 epochs
        assert table[(name, "mae")]["value"] < 5.5 and table[(name, "rmse")]["value"] < 8.0, name
        assert table[(name, "seconds")]["value"] > 0


def load_ch03():
    sys.path.insert(0, str(ROOT / "experiments"))
    try:
        import ch03_deep_learning as ch03
    finally:
        sys.path.remove(str(ROOT / "experiments"))
    return ch03


def test_ch03_models_train_identically_with_manual_and_autodiff_gradients():
    ch03 = load_ch03()
    from fdl.data import boston_split
    from fdl.precision import matmul_precision

    data = boston_split()
    model = ch03.models()["two hidden layers"]  # holds every op of the other two models
    with matmul_precision("highest"):  # full float32: a GPU's default TF32 makes the paths drift apart (issue 14)
        manual = ch03.run(model, data, seed=3, epochs=3, eval_every=3, grad="manual", log=None)
        auto = ch03.run(model, data, seed=3, epochs=3, eval_every=3, grad="autodiff", log=None)
    leaves_m, leaves_a = jax.tree_util.tree_leaves(manual[0]), jax.tree_util.tree_leaves(auto[0])
    assert len(leaves_m) == len(leaves_a) == 6
    for a, b in zip(leaves_m, leaves_a, strict=True):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert manual[2] == pytest.approx(auto[2], rel=1e-4)


def test_ch03_seeds_trained_together_match_one_run_each():
    """``run`` with a list of seeds (the script's one call per model) gives each seed what its own run gives."""
    ch03 = load_ch03()
    from fdl.data import boston_split

    data = boston_split()
    model = ch03.models()["one hidden layer"]
    params, histories, maes, rmses = ch03.run(model, data, seed=[3, 4], epochs=3, eval_every=1, log=None)
    assert [h.seed for h in histories] == [3, 4] and len(maes) == len(rmses) == 2
    assert all(leaf.shape[0] == 2 for leaf in jax.tree_util.tree_leaves(params))
    for r, seed in enumerate((3, 4)):
        alone, history, mae, rmse = ch03.run(model, data, seed=seed, epochs=3, eval_every=1, log=None)
        assert isinstance(mae, float) and isinstance(rmse, float)
        assert [e["loss"] for e in histories[r].evals] == pytest.approx([e["loss"] for e in history.evals], rel=1e-5)
        assert maes[r] == pytest.approx(mae, rel=1e-5) and rmses[r] == pytest.approx(rmse, rel=1e-5)
        for a, b in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(alone), strict=True):
            np.testing.assert_allclose(a[r], b, rtol=1e-5, atol=1e-6)


def test_ch03_seeds_option(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "experiments" / "ch03_deep_learning.py"),
            "--quick",
            "--seeds",
            "2",
            "--seed",
            "5",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["meta"]["seeds"] == [5, 6] and {r["name"] for r in data["results"]} == set(book.CH03)
    assert "seed 5: test MAE" in proc.stdout and "seed 6: Validation loss after 5 epochs" in proc.stdout
    assert "mean ± sd over seeds 5..6" in proc.stdout


def test_ch03_replay_book_prints_the_notebooks_21_figures(tmp_path):
    """``--replay-book``: fdl fed the notebook's NumPy draws prints every one of its 21 figures to its decimals."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "ch03_deep_learning.py"), "--replay-book", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "21 of 21 figures equal to the notebook's decimals" in proc.stdout
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["meta"]["replay_equal"] == 21 and data["meta"]["x64"] is True
    rows = data["results"]
    assert len(rows) == 21 and all(r["value"] == r["book"] for r in rows)
    figures = {r["name"]: r["value"] for r in rows}
    assert (
        figures["two hidden layers, validation MSE, epoch 50 (replay)"]
        == book.CH03_NOTEBOOK["two hidden layers"]["val_mse"][4]
    )


def test_ch03_replay_book_refuses_options_it_would_ignore():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "ch03_deep_learning.py"), "--replay-book", "--seed", "5"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1 and "takes no --quick, --seed or --seeds" in proc.stderr
