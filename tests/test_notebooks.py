"""Every chapter notebook (notebooks/*.py, jupytext percent format) runs top to bottom without an error.

Needs the ``notebooks`` extra (jupytext, nbclient, ipykernel, matplotlib); skipped with that reason without it.
The MNIST notebooks call ``fdl.data.load_mnist()``, which downloads once into ``~/.cache/fdl``.
"""

from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
REASON = 'the notebook tests need the notebooks extra: pip install -e ".[notebooks]"'

jupytext = pytest.importorskip("jupytext", reason=REASON)
nbclient = pytest.importorskip("nbclient", reason=REASON)
pytest.importorskip("ipykernel", reason=REASON)
pytest.importorskip("matplotlib", reason=REASON)

CHAPTERS = [
    "ch01_foundations",
    "ch02_fundamentals",
    "ch03_deep_learning",
    "ch04_extensions",
    "ch05_cnn",
    "ch06_rnn",
    "ch07_autodiff",
    "appendix_conv_as_matmul",
]


def test_every_chapter_has_a_notebook():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.py")) == sorted(CHAPTERS)


@pytest.mark.parametrize("name", CHAPTERS)
def test_notebook_executes(name, monkeypatch):
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")  # silences jupyter_core's path-migration warning
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend returns the figures
    path = NOTEBOOKS / f"{name}.py"
    notebook = jupytext.read(path)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute()  # raises CellExecutionError, naming the cell and the traceback, if any cell fails
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    outputs = [out for cell in code for out in cell.get("outputs", [])]
    assert not [out for out in outputs if out.get("output_type") == "error"]
    assert any("image/png" in out.get("data", {}) for out in outputs), f"{name}: no figure was drawn"
    text = "".join(out.get("text", "") for out in outputs if out.get("output_type") == "stream")
    assert "Traceback" not in text
