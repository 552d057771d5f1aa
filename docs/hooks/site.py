"""MkDocs hook: put the chapter notebooks and the experiment scripts into the site.

* ``notebooks/*.py`` (jupytext percent notebooks, kept at the top of the repository) are added to the site's
  files before mkdocs-jupyter looks at them, so they render as pages under ``notebooks/``;
* each ``experiments/chNN_*.py`` gets a generated page ``experiments/chNN_*.md`` with its command line and
  source, and the notebooks' links to ``../experiments/chNN_*.py`` (right in the repository) are pointed at
  those pages in the site.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENT_LINK = re.compile(r'href="\.\./experiments/(ch\d\d_\w+)\.py"')


def experiment_page(path: Path) -> str:
    source = path.read_text(encoding="utf-8")
    return (
        f"# `experiments/{path.name}`\n\n"
        f"Run it from the repository root: `python experiments/{path.name} --help` lists its options; "
        f"`--quick` is a smoke run on a subset.\n\n"
        f"````python\n{source}````\n"
    )


@event_priority(100)  # before mkdocs-jupyter's on_files, which claims the notebooks
def on_files(files, config):
    for path in sorted((ROOT / "notebooks").glob("*.py")):
        files.append(File(f"notebooks/{path.name}", str(ROOT), config["site_dir"], config["use_directory_urls"]))
    for path in sorted((ROOT / "experiments").glob("ch[0-9][0-9]_*.py")):
        files.append(File.generated(config, f"experiments/{path.stem}.md", content=experiment_page(path)))
    return files


def on_page_content(html, page, config, files):
    if page.file.src_uri.startswith("notebooks/"):
        return EXPERIMENT_LINK.sub(r'href="../experiments/\1.html"', html)
    return html
