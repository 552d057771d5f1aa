"""The documentation site builds with ``mkdocs build --strict`` (any warning fails), with every page in it.

Needs the ``docs`` extra (mkdocs, mkdocs-material, mkdocstrings[python], mkdocs-jupyter); skipped with that
reason without it. The notebooks are rendered without running them here (``FDL_DOCS_EXECUTE=false``):
tests/test_notebooks.py executes them.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REASON = 'the docs tests need the docs extra: pip install -e ".[docs]"'

pytest.importorskip("mkdocs", reason=REASON)
pytest.importorskip("material", reason=REASON)
pytest.importorskip("mkdocstrings_handlers.python", reason=REASON)
pytest.importorskip("mkdocs_jupyter", reason=REASON)

API_PAGES = [
    "ops",
    "layers",
    "recurrent",
    "losses",
    "optim",
    "train",
    "testing",
    "data",
    "checkpoint",
    "parallel",
    "init",
    "metrics",
    "precision",
    "compile_cache",
    "chapters",
    "harness",
]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "FDL_DOCS_EXECUTE": "false", "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    assert "WARNING" not in proc.stderr, proc.stderr[-5000:]
    return out


def test_every_notebook_is_a_page(site):
    for notebook in (ROOT / "notebooks").glob("*.py"):
        page = (site / "notebooks" / f"{notebook.stem}.html").read_text(encoding="utf-8")
        assert "hand-written" in page, notebook.name
        assert "../experiments/" in page and '.py"' not in page.split("../experiments/")[1][:60], notebook.name


def test_every_api_module_is_documented(site):
    for name in API_PAGES:
        page = (site / "api" / f"{name}.html").read_text(encoding="utf-8")
        assert f'id="fdl.{name}"' in page, name
        prose = re.sub(r"<pre.*?</pre>", "", page, flags=re.S)  # the "source" listings keep the roles, rightly
        assert ":func:`" not in prose and ":class:`" not in prose, f"{name}: a Sphinx role was rendered verbatim"
    train = (site / "api" / "train.html").read_text(encoding="utf-8")
    assert re.search(r'id="fdl\.train\.[\w.]*fit"', train), "fdl.train: fit is not documented"


def test_experiment_pages_hold_their_scripts(site):
    for script in (ROOT / "experiments").glob("ch[0-9][0-9]_*.py"):
        page = (site / "experiments" / f"{script.stem}.html").read_text(encoding="utf-8")
        assert script.name in page


PAGES = sorted((ROOT / "docs").glob("*.md"))  # the site's own pages, which the README links


def test_every_page_is_in_the_nav_and_built(site):
    nav = (ROOT / "mkdocs.yml").read_text().split("\nnav:", 1)[1]
    for page in PAGES:
        assert re.search(rf"[\s:-]{re.escape(page.name)}\s*$", nav, flags=re.M), f"mkdocs.yml's nav lacks {page.name}"
        assert (site / f"{page.stem}.html").is_file(), page.name


def test_the_site_links_the_newest_benchmark(site):
    archives = sorted(p.name for p in (ROOT / "docs").glob("benchmark-*") if p.is_dir())
    newest, older = archives[-1], archives[:-1]
    nav = (ROOT / "mkdocs.yml").read_text().split("\nnav:", 1)[1]
    assert f"{newest}/" in nav and not any(f"{old}/" in nav for old in older), "the nav names the newest archive only"
    for page in ("index", "performance"):
        html = (site / f"{page}.html").read_text(encoding="utf-8")
        assert f'href="{newest}/' in html, f"{page}.html does not link the newest benchmark archive, {newest}"


def test_anchors_between_the_pages_exist_in_the_site(site):
    link = re.compile(r'href="([\w-]+\.html)?#([^"]+)"')
    missing = []
    for page in PAGES:
        html = (site / f"{page.stem}.html").read_text(encoding="utf-8")
        for target, anchor in link.findall(html):
            dest = (site / target).read_text(encoding="utf-8") if target else html
            if f'id="{anchor}"' not in dest:
                missing.append(f"{page.name}: {target}#{anchor}")
    assert not missing, missing
