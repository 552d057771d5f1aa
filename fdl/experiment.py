"""What every experiment script shares: its command line, its results table and ``results.json``.

The contract (README, "Experiments"): ``python experiments/chNN_name.py [--quick] [--seed N] [--out DIR]``
prints the book-style log and a table beside the book's figures, and writes ``DIR/results.json``, a list of
``{"name", "metric", "value", "book"}`` objects.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

METRICS = ("accuracy", "mae", "rmse", "mse", "ce", "loss", "value", "seconds")


def parse_args(description: str, argv=None, *, default_seed: int = 0, extra=None) -> argparse.Namespace:
    """The standard experiment command line; ``extra(parser)`` may add options of the script's own."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a smoke run on a subset, well under a minute")
    parser.add_argument("--seed", type=int, default=default_seed, help="the base random seed")
    parser.add_argument("--out", type=Path, default=None, help="directory for results.json (and pictures)")
    if extra is not None:
        extra(parser)
    return parser.parse_args(argv)


@dataclass
class Result:
    name: str
    metric: str
    value: float
    book: float | None = None


class Results:
    """Rows of ``(name, metric, value, book)``, printed as a table and written as ``results.json``."""

    def __init__(self, chapter: str):
        self.chapter = chapter
        self.rows: list[Result] = []

    def add(self, name: str, metric: str, value: float, book: float | None = None) -> Result:
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; use one of {METRICS}")
        row = Result(name, metric, float(value), None if book is None else float(book))
        self.rows.append(row)
        return row

    def table(self) -> str:
        return format_table(["configuration", "metric", "book", "fdl"],
                            [[r.name, r.metric, _fmt(r.book), _fmt(r.value)] for r in self.rows])

    def write(self, out: Path | str | None) -> Path | None:
        """Write ``out/results.json`` atomically; returns its path (nothing is written when ``out`` is None)."""
        if out is None:
            return None
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        path = out / "results.json"
        write_json_atomic(path, [asdict(r) for r in self.rows])
        return path


def write_json_atomic(path: Path, data) -> None:
    """Write JSON to a temporary file beside ``path``, then rename it over ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and (math.isnan(v) or abs(v) >= 100 or v == int(v)):
        return f"{v:.2f}"
    return f"{v:.5g}" if isinstance(v, float) else str(v)


def format_table(header: list[str], rows: list[list]) -> str:
    """A Markdown table."""
    cells = [header] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
    return "\n".join([line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] +
                     [line(r) for r in cells[1:]])


def mean_sd(values) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    values = [float(v) for v in values]
    m = sum(values) / len(values)
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return m, sd
