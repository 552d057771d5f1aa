"""The package's layout: imports run one way through the tiers, and the README's "What is where" table matches
the tree."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "fdl"

# Each unit may import only from units of a lower level (or from itself). Library first, then the chapter
# demos, then the reproduction harness; a new module must be placed here.
LEVELS = {
    "fdl._checks": 0,
    "fdl._io": 0,
    "fdl._moved": 0,
    "fdl.precision": 0,
    "fdl.ops": 1,
    "fdl.init": 1,
    "fdl.optim": 1,
    "fdl.data": 1,
    "fdl.checkpoint": 1,
    "fdl.parallel": 1,
    "fdl.testing": 1,
    "fdl.losses": 2,
    "fdl.layers": 2,
    "fdl.compile_cache": 2,
    "fdl.train": 3,
    "fdl.metrics": 3,  # metrics: the label checks of fdl.losses
    "fdl.recurrent": 4,
    "fdl": 5,  # the package's __init__: the library's public names
    "fdl.chapters": 6,
    "fdl.harness": 7,
    "fdl.__main__": 8,  # python -m fdl: the harness's command
}
LIBRARY_LEVEL = LEVELS["fdl"]


def _unit(module: str) -> str:
    """``fdl.ops.dense`` -> ``fdl.ops``; ``fdl.__version__`` (an attribute of the root) -> ``fdl``."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__version__":
        return "fdl"
    return ".".join(parts[:2])


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) for every import of fdl in ``path``, at module level or inside a function."""
    rel = path.relative_to(ROOT).with_suffix("")
    package = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                if node.module:
                    found.append((node.lineno, ".".join([*base, node.module])))
                else:
                    found += [(node.lineno, ".".join([*base, a.name])) for a in node.names]
            elif node.module and node.module.split(".")[0] == "fdl":
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "fdl"]
    return found


def _module(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_unit_has_a_tier():
    units = {_unit(_module(p)) for p in MODULES}
    assert units <= LEVELS.keys(), f"place these in LEVELS: {sorted(units - LEVELS.keys())}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_upward(path):
    unit = _unit(_module(path))
    upward = [
        f"line {line}: {target}"
        for line, target in _imports(path)
        if _unit(target) != unit and LEVELS[_unit(target)] >= LEVELS[unit]
    ]
    assert not upward, f"{path.relative_to(ROOT)} ({unit}, tier {LEVELS[unit]}) imports upward: {upward}"


def test_the_layout_checker_sees_upward_imports(tmp_path):
    # the check above must be able to fail: an op importing the trainer, and the library importing a chapter
    assert _unit("fdl.train.fit") == "fdl.train" and LEVELS["fdl.train"] >= LEVELS["fdl.ops"]
    assert LEVELS["fdl.chapters"] > LIBRARY_LEVEL and LEVELS["fdl.harness"] > LEVELS["fdl.chapters"]
    fake = PACKAGE / "ops" / "_layout_probe.py"
    assert not fake.exists()
    try:
        fake.write_text("from ..train import fit\nimport fdl.harness.book\n")
        assert _imports(fake) == [(1, "fdl.train"), (2, "fdl.harness.book")]
    finally:
        fake.unlink()


def _what_is_where() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## What is where", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    paths = []
    for row in rows:
        first = row.split("|")[1]
        paths += re.findall(r"`([^`]+)`", first)
    return paths


def test_what_is_where_names_paths_that_exist():
    paths = _what_is_where()
    assert len(paths) > 10
    missing = [p for p in paths if not list(ROOT.glob(p.rstrip("/").replace("NN", "[0-9][0-9]")))]
    assert not missing, f"README 'What is where' names paths that do not exist: {missing}"


def test_what_is_where_covers_the_package_and_the_tests():
    named = {p.rstrip("/") for p in _what_is_where()}
    entries = [
        p for p in sorted(PACKAGE.iterdir()) if p.name not in {"__init__.py", "__main__.py", "py.typed", "__pycache__"}
    ]
    entries += [p for p in sorted((ROOT / "tests").iterdir()) if p.is_dir() and p.name != "__pycache__"]
    unnamed = [
        str(p.relative_to(ROOT))
        for p in entries
        if str(p.relative_to(ROOT)) not in named
        and not any(n.startswith(str(p.relative_to(ROOT)) + "/") for n in named)
    ]
    assert not unnamed, f"README 'What is where' does not mention: {unnamed}"
