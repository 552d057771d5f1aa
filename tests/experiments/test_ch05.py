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


def test_the_books_conv_weight_gradient_is_right_for_one_image_and_wrong_for_more():
    """``--book-conv-grad`` (erratum 4): the book's patches are position-major, its output gradient example-major;
    they pair up only for a batch of one image."""
    import importlib.util

    import jax
    import numpy as np

    from fdl.ops import conv2d

    spec = importlib.util.spec_from_file_location("ch05_cnn", ROOT / "experiments/ch05_cnn.py")
    ch05 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ch05)
    rng = np.random.default_rng(0)
    W = rng.normal(size=(1, 3, 5, 5))
    for n, same in ((1, True), (3, False)):
        x, g = rng.normal(size=(n, 1, 6, 6)), rng.normal(size=(n, 3, 6, 6))
        right = jax.grad(lambda W, x=x, g=g: (conv2d(x, W, grad="autodiff") * g).sum())(W)
        book = jax.grad(lambda W, x=x, g=g: (ch05.book_conv2d(x, W, grad="manual") * g).sum())(W)
        assert np.allclose(book, right, rtol=1e-10) == same
