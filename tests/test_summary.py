"""fdl.layers.core.summary / Layer.summary: layers, output shapes and parameter counts of a model."""

import jax
import jax.numpy as jnp
import pytest

from fdl import conv2d, dense, dropout, flatten, serial
from fdl.layers.core import summary


def _cells(table: str) -> list[list[str]]:
    return [[c[1:].rstrip() if i == 0 else c.strip() for i, c in enumerate(line.strip("|").split("|"))]
            for line in table.splitlines() if line.startswith("| ")]


def _n_params(model, shape) -> int:
    return sum(x.size for x in jax.tree.leaves(model.init(jax.random.key(0), shape)))


def test_serial_model():
    model = serial(dense(13, "sigmoid"), dropout(0.8), dense(1))
    table = model.summary((13,))
    assert _cells(table) == [["layer", "output shape", "params"],
                             ["dense(13, sigmoid)", "(batch, 13)", "182"],
                             ["dropout(0.8)", "(batch, 13)", "0"],
                             ["dense(1, linear)", "(batch, 1)", "14"]]
    assert table.splitlines()[0] == "input shape: (batch, 13)"
    assert table.splitlines()[-1] == "total: 196 parameters"
    assert _n_params(model, (13,)) == 196


def test_nested_serial_and_conv():
    conv = conv2d(4, 3, activation="tanh")
    model = serial(conv, flatten(), serial(dense(32, "tanh"), dense(10)))
    table = summary(model, (1, 8, 8))
    rows = _cells(table)[1:]
    assert [r[0] for r in rows] == ["conv2d(4, 3, tanh)", "flatten()", "serial (2 layers)", "  dense(32, tanh)",
                                    "  dense(10, linear)"]
    n_conv = _n_params(conv, (1, 8, 8))
    assert n_conv >= 4 * 1 * 3 * 3  # the kernel, plus any bias
    assert rows[0][1:] == ["(batch, 4, 8, 8)", f"{n_conv:,}"]
    assert rows[1][1:] == ["(batch, 256)", "0"]
    assert rows[2][1:] == ["(batch, 10)", f"{256 * 32 + 32 + 32 * 10 + 10:,}"]
    assert rows[3][1:] == ["(batch, 32)", f"{256 * 32 + 32:,}"]
    total = _n_params(model, (1, 8, 8))
    assert total == n_conv + 256 * 32 + 32 + 32 * 10 + 10
    assert table.splitlines()[-1] == f"total: {total:,} parameters"


def test_a_single_layer_and_float64():
    assert _cells(summary(dense(3), (5,), jnp.float64))[1] == ["dense(3, linear)", "(batch, 3)", "18"]


def test_not_a_layer_and_a_bad_shape():
    with pytest.raises(TypeError, match="summary: expected a Layer"):
        summary(lambda x: x, (3,))
    with pytest.raises(ValueError, match="put flatten\\(\\) before it"):
        serial(dense(3)).summary((2, 2))
