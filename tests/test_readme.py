"""The README's ```python blocks run as written, each in a fresh Python process.

A block runs as a user would paste it: no hidden set-up, so a block that needs float64 sets it itself
(``jax.config.update("jax_enable_x64", True)``) and every name it uses is imported in it. A block that is
deliberately not runnable (an outline with ``...``) starts with the line ``# not run``.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP = "# not run"


def python_blocks(text: str) -> list[tuple[str, str]]:
    """``(id, code)`` of each ```python block; the id names its line and the heading above it."""
    blocks, heading = [], "top"
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#") and not line.startswith("#!"):
            heading = line.lstrip("#").strip()
        if line.strip() == "```python":
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "```"), len(lines))
            slug = re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")[:40]
            blocks.append((f"line{i + 1}-{slug}", "\n".join(lines[i + 1:end]) + "\n"))
            i = end
        i += 1
    return blocks


def test_blocks_are_found():
    found = python_blocks("# A\n```python\nx = 1\n```\ntext\n## B c\n```python\n# not run\n...\n```\n")
    assert found == [("line2-a", "x = 1\n"), ("line7-b-c", "# not run\n...\n")]


BLOCKS = python_blocks((ROOT / "README.md").read_text())


@pytest.mark.parametrize("code", [code for _, code in BLOCKS], ids=[name for name, _ in BLOCKS])
def test_readme_block_runs_as_written(code, tmp_path):
    if code.lstrip().startswith(SKIP):
        pytest.skip("marked '# not run'")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "FDL_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"the block fails as written:\n{code}\n--- stderr ---\n{proc.stderr[-3000:]}"
