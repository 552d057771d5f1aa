"""experiments/ch07_autodiff.py: the --quick run end to end, and the PyTorch-style layers it builds from fdl's ops."""

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

from fdl.harness.book import CH07
from fdl.harness.experiment import SMOKE_NOTE
from fdl.losses import mean_squared_error, softmax_cross_entropy
from fdl.testing import check_model

ROOT = Path(__file__).resolve().parents[2]
PATHS = ("jax.grad", "hand-written VJPs")


@pytest.fixture(scope="module")
def ch07():
    sys.path.insert(0, str(ROOT / "experiments"))
    try:
        spec = importlib.util.spec_from_file_location("ch07_autodiff", ROOT / "experiments/ch07_autodiff.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "experiments"))
    return module


def installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def test_ch07_quick(tmp_path):
    # full float32 products: under a GPU's default TF32 the two gradient paths' trainings drift apart (issue 14)
    env = dict(os.environ, JAX_DEFAULT_MATMUL_PRECISION="highest")
    proc = subprocess.run(
        [sys.executable, "experiments/ch07_autodiff.py", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    rows = {r["name"]: r for r in json.loads((tmp_path / "results.json").read_text())["results"]}
    assert all(math.isfinite(r["value"]) for r in rows.values())
    lstm = next(n.split(":")[0] for n in rows if n.startswith("char lstm, hidden"))
    models = {
        "boston": ("mse", CH07["boston"]["mse"]),
        "convnet": ("accuracy", CH07["convnet"]["accuracy"]),
        lstm: ("ce", CH07["char lstm"]["ce"]),
        "autoencoder": ("mse", CH07["autoencoder"]["mse"]),
    }
    for model, (metric, book) in models.items():
        final = [r for n, r in rows.items() if n.startswith(model + ": ") and r["metric"] == metric]
        assert len(final) == 2 and all(r["book"] == book for r in final), model
        # the same seed, batches and dropout masks: the two gradient paths train to the same model
        assert final[0]["value"] == pytest.approx(final[1]["value"], rel=1e-3), model
        for path in PATHS:
            assert rows[f"{model}: train step, {path}"]["value"] > 0
        assert rows[f"{model}: max relative gradient difference (float64)"]["value"] < 1e-10, model
    accuracy = [r["value"] for n, r in rows.items() if n.startswith("convnet: ") and r["metric"] == "accuracy"]
    assert all(20 < a <= 100 for a in accuracy)  # ten steps on 600 images already beat chance (10 %)
    assert "| model" in proc.stdout and (tmp_path / "table.md").read_text().startswith(SMOKE_NOTE + "\n| model")
    pictures = {"ae_reconstructions.png", "ae_random_encodings.png"}
    pictures |= {"ae_tsne.png"} if installed("sklearn") else set()
    written = {p.name for p in tmp_path.glob("*.png")}
    assert written == (pictures if installed("matplotlib") else set())


def test_pytorch_style_conv_net_gradients_match_autodiff(ch07):
    from fdl import serial

    model = serial(
        ch07.conv(3, keep_prob=0.8, k=3),
        ch07.conv(2, keep_prob=0.8, flatten=True, k=3),
        ch07.linear(4, "tanh", keep_prob=0.8),
        ch07.linear(3),
    )
    params = model.init(jax.random.key(0), (1, 6, 5), jnp.float64)
    x = jax.random.normal(jax.random.key(1), (2, 1, 6, 5), jnp.float64)
    y = jax.nn.one_hot(jnp.array([0, 2]), 3, dtype=jnp.float64)
    check_model(model, params, x, y, softmax_cross_entropy, key=jax.random.key(2), train=True)


def test_autoencoder_shapes_and_gradients(ch07):
    model, encoder, decoder = ch07.autoencoder(hidden=3)
    params = model.init(jax.random.key(0), (1, 28, 28), jnp.float64)
    x = jnp.tanh(jax.random.normal(jax.random.key(1), (2, 1, 28, 28), jnp.float64))
    assert encoder.apply(params[0], x).shape == (2, 3)
    assert decoder.apply(params[1], jnp.zeros((5, 3))).shape == (5, 1, 28, 28)
    pixel_mse = lambda p, y, grad="manual": mean_squared_error(p, y, over="elements", grad=grad)
    check_model(model, params, x, x, pixel_mse, wrt_input=False, numerical=False)


def test_pytorch_default_initialisation_bounds(ch07):
    bounds = []
    for layer, shape in ((ch07.conv(4, k=5), (3, 8, 8)), (ch07.linear(7), (10,))):
        params = layer.init(jax.random.key(0), shape)
        fan_in = shape[0] * 25 if len(shape) == 3 else shape[0]
        for leaf in params.values():
            bounds.append(float(jnp.max(jnp.abs(leaf))) * math.sqrt(fan_in))
    assert all(0.5 < b <= 1.0 for b in bounds)  # uniform within +/- 1 / sqrt(fan_in), and not much smaller
    lstm = ch07.char_lstm(16, 5)
    leaves = jax.tree.leaves(lstm.init(jax.random.key(0), (5,)))
    assert max(float(jnp.max(jnp.abs(a))) for a in leaves) <= 1 / math.sqrt(16)


def test_tsne_points_default_number_or_all(ch07, capsys):
    from fdl.harness.experiment import parse_args

    parse = lambda *argv: parse_args("ch07", list(argv), extra=ch07.extra_args).tsne_points
    assert parse() is None and ch07.TSNE_POINTS == 2000  # main: 2000, or 200 with --quick
    assert parse("--tsne-points", "all") == "all"
    assert parse("--tsne-points", "3000") == 3000
    for bad in ("5", "many", "-1"):
        with pytest.raises(SystemExit):
            parse("--tsne-points", bad)
        assert "expected 'all' or a number of test encodings of at least 10" in capsys.readouterr().err
