"""The README's and the site pages' ```python blocks run as written, each in a fresh Python process; their
relative links resolve.

The README is short and links one page of ``docs/`` per topic (results, performance, training, devices,
conventions, mistakes, data); the blocks that moved there run from there. A block runs as a user would paste
it: no hidden set-up, so a block that needs float64 sets it itself (``jax.config.update("jax_enable_x64",
True)``) and every name it uses is imported in it. A block that is deliberately not runnable (an outline with
``...``) starts with the line ``# not run``.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP = "# not run"
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))  # the site's own pages (not docs/api/, not the benchmark archives)
TEXTS = [README, *PAGES]
README_LINES = 250  # "a README read in five minutes": what does not fit goes to a page of docs/


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
            blocks.append((f"line{i + 1}-{slug}", "\n".join(lines[i + 1 : end]) + "\n"))
            i = end
        i += 1
    return blocks


def test_blocks_are_found():
    found = python_blocks("# A\n```python\nx = 1\n```\ntext\n## B c\n```python\n# not run\n...\n```\n")
    assert found == [("line2-a", "x = 1\n"), ("line7-b-c", "# not run\n...\n")]


BLOCKS = [
    (f"{path.relative_to(ROOT)}:{name}", code) for path in TEXTS for name, code in python_blocks(path.read_text())
]


def test_the_readme_and_the_pages_have_blocks():
    # the README keeps the op and the library example; the pages keep what moved (training, devices)
    where = {name.split(":")[0] for name, _ in BLOCKS}
    assert {"README.md", "docs/training.md", "docs/devices.md"} <= where, where


@pytest.mark.parametrize("code", [code for _, code in BLOCKS], ids=[name for name, _ in BLOCKS])
def test_readme_block_runs_as_written(code, tmp_path):
    if code.lstrip().startswith(SKIP):
        pytest.skip("marked '# not run'")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "FDL_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, f"the block fails as written:\n{code}\n--- stderr ---\n{proc.stderr[-3000:]}"


# --- links -------------------------------------------------------------------------------------------------

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _outside_code(text: str) -> str:
    """The text without fenced blocks and inline code, where a ``[x](y)`` is not a link."""
    text = re.sub(r"^(```|````).*?^\1\s*$", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {
        github_slug(line.lstrip("#"))
        for line in _outside_code(path.read_text()).splitlines()
        if re.match(r"#{1,6} ", line)
    }


def links(path: Path) -> list[str]:
    return [t for t in LINK.findall(_outside_code(path.read_text())) if not re.match(r"[a-z]+:", t)]


def test_slugs_and_links_are_read_as_github_does():
    errata = "Errata: where fdl differs from the book's code"
    assert github_slug(errata) == "errata-where-fdl-differs-from-the-books-code"
    assert github_slug("Migrating from fdl 0.1") == "migrating-from-fdl-01"
    assert github_slug("On the CPU (1 December 2026)") == "on-the-cpu-1-december-2026"
    assert LINK.findall("see [a](docs/a.md#b) and `[c](d)`") == ["docs/a.md#b", "d"]
    assert LINK.findall(_outside_code("see [a](x.md) and `[c](d)`")) == ["x.md"]


def site_source(dest: Path) -> Path:
    """What a page the site generates stands for: ``docs/notebooks/x.py`` is ``notebooks/x.py`` and
    ``docs/experiments/x.md`` is ``experiments/x.py`` (docs/hooks/site.py adds them; mkdocs checks those links)."""
    rel = dest.relative_to(ROOT / "docs") if dest.is_relative_to(ROOT / "docs") else None
    if rel is not None and rel.parts[0] == "notebooks":
        return ROOT / rel
    if rel is not None and rel.parts[0] == "experiments":
        return (ROOT / rel).with_suffix(".py")
    return dest


@pytest.mark.parametrize("path", TEXTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path):
    broken = []
    for target in links(path):
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        if not dest.exists() and site_source(dest).exists():
            continue
        if not dest.exists():
            broken.append(f"{target}: no {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.relative_to(ROOT)}")
    assert not broken, f"{path.relative_to(ROOT)} has broken links: {broken}"


def test_the_readme_links_every_page_of_the_site():
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in links(README)}
    missing = [str(p.relative_to(ROOT)) for p in PAGES if p.resolve() not in linked]
    assert not missing, f"the README does not link these pages: {missing}"
    assert (ROOT / "CHANGELOG.md").resolve() in linked, "the README links the CHANGELOG (the migration table)"


def test_the_readme_stays_short():
    n = len(README.read_text().splitlines())
    assert n <= README_LINES, f"README.md has {n} lines (at most {README_LINES}): move detail to a page of docs/"
