"""What every experiment script shares: its command line, its results table and ``results.json``.

The contract (README, "Experiments"): ``python experiments/chNN_name.py [--quick] [--seed N] [--out DIR]
[--progress]`` prints the book-style log and a table beside the book's figures, and writes
``DIR/results.json``::

    {"meta": {"chapter", "argv", "quick", "seed", "options", "versions", "device", "date", ...},
     "results": [{"name", "metric", "value", "book"}, ...]}

A ``--quick`` run is a smoke run on a subset (``meta.smoke``): its tables start with :data:`SMOKE_NOTE` and
leave the book's column out, since its numbers are not comparable with the book's. A script whose ``--quick``
changes nothing says so with ``parse_args(..., quick_is_full=True)``.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import math
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import parallel
from .._io import write_json_atomic

SMOKE_NOTE = "smoke run on a subset (--quick): not comparable with the book; run without --quick for that"
_last_args: argparse.Namespace | None = None  # the options parse_args last returned, recorded in results.json

METRICS = ("accuracy", "mae", "rmse", "mse", "ce", "loss", "value", "seconds", "sd", "z")


def parse_args(
    description: str, argv=None, *, default_seed: int = 0, extra=None, quick_is_full: bool = False
) -> argparse.Namespace:
    """The standard experiment command line; ``extra(parser)`` may add options of the script's own.

    ``quick_is_full``: the script's ``--quick`` runs the full experiment (so its results are not a smoke run).
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a smoke run on a subset, well under a minute")
    parser.add_argument("--seed", type=int, default=default_seed, help="the base random seed")
    parser.add_argument("--out", type=Path, default=None, help="directory for results.json (and pictures)")
    parser.add_argument(
        "--progress",
        action="store_true",
        help="show training progress (fdl.fit reads FDL_PROGRESS=1): tqdm bars when tqdm is "
        "installed, else a line per epoch",
    )
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    args.quick_is_full = quick_is_full
    if args.progress or os.environ.get("FDL_PROGRESS") == "1":
        enable_progress()
    global _last_args
    _last_args = args
    return args


def positive_int(text: str) -> int:
    """An argparse ``type`` for counts such as ``--seeds``: a whole number of at least 1 (ArgumentTypeError
    otherwise, which argparse reports as a usage error)."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def enable_progress(say=None) -> None:
    """Set ``FDL_PROGRESS=1`` (read by ``fdl.fit``) and say when tqdm is missing, once: the note sets
    ``FDL_PROGRESS_NOTED=1``, which the processes ``fdl reproduce`` starts inherit."""
    os.environ["FDL_PROGRESS"] = "1"
    if importlib.util.find_spec("tqdm") is None and os.environ.get("FDL_PROGRESS_NOTED") != "1":
        os.environ["FDL_PROGRESS_NOTED"] = "1"
        (say or (lambda m: print(m, file=sys.stderr, flush=True)))(
            "fdl: tqdm is not installed, so --progress prints a line per epoch instead of a bar "
            "(pip install tqdm, or fdl[progress], for bars)"
        )


def is_smoke(args) -> bool:
    """Whether ``args`` are those of a smoke run: ``--quick``, in a script where that runs a subset."""
    return bool(getattr(args, "quick", False)) and not getattr(args, "quick_is_full", False)


def run_meta(args: argparse.Namespace | None = None, **extra) -> dict:
    """What a results.json records of its run: command line, quick or full, seed(s), versions, device, date.

    ``args`` defaults to the options :func:`parse_args` last returned (all of them are kept under ``options``);
    ``extra`` is added as it is (e.g. ``chapter``, or ``seeds``: the list of seeds a script averaged over).
    """
    import jax
    import jaxlib

    from .. import __version__

    args = _last_args if args is None else args
    options = json.loads(json.dumps(vars(args or argparse.Namespace()), default=str))  # paths etc. as text
    device = jax.devices()[0]
    return {
        "argv": list(sys.argv),
        "quick": bool(options.get("quick", False)),
        "smoke": is_smoke(args),
        "seed": options.get("seed"),
        "options": options,
        "versions": {
            "fdl": __version__,
            "jax": jax.__version__,
            "jaxlib": jaxlib.__version__,
            "python": sys.version.split()[0],
        },
        "device": {"platform": device.platform, "kind": device.device_kind, "count": jax.device_count()},
        "x64": bool(jax.config.jax_enable_x64),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        **extra,
    }


def read_results(path: Path | str) -> tuple[dict, list[dict]]:
    """``(meta, rows)`` of a results.json; a bare list of rows (an older file) gives ``meta = {}``.

    Raises:
      ValueError: a file of neither form.
    """
    data = json.loads(Path(path).read_text())
    if isinstance(data, list):
        return {}, data
    if isinstance(data, dict) and isinstance(data.get("results"), list):
        return data.get("meta", {}), data["results"]
    raise ValueError(f"{path}: not an fdl results.json (expected {{'meta': ..., 'results': [...]}})")


@dataclass
class Result:
    name: str
    metric: str
    value: float
    book: float | None = None


class Results:
    """Rows of ``(name, metric, value, book)``, printed as a table and written as ``results.json``."""

    def __init__(self, chapter: str, args: argparse.Namespace | None = None):
        """``args``: the script's options (default: what :func:`parse_args` last returned); with ``quick``
        set, the table is a smoke run's. ``self.meta`` may be given more entries (e.g. ``seeds``)."""
        self.chapter = chapter
        self.args = _last_args if args is None else args
        self.rows: list[Result] = []
        self.meta: dict = {}

    @property
    def quick(self) -> bool:
        """Whether this is a smoke run (:func:`is_smoke`): its table is then marked and has no book column."""
        return is_smoke(self.args)

    def add(self, name: str, metric: str, value: float, book: float | None = None) -> Result:
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; use one of {METRICS}")
        row = Result(name, metric, float(value), None if book is None else float(book))
        self.rows.append(row)
        return row

    def table(self) -> str:
        """A Markdown table beside the book's figures; for a quick run, a note and no book column."""
        return results_table([asdict(r) for r in self.rows], quick=self.quick)

    def write(self, out: Path | str | None) -> Path | None:
        """Write ``out/results.json`` atomically and return its path; ``None``, writing nothing, when ``out`` is
        None or on a process other than process 0 (:func:`fdl.parallel.writes`)."""
        if out is None or not parallel.writes():
            return None
        path = Path(out) / "results.json"
        write_json_atomic(
            path,
            {"meta": run_meta(self.args, chapter=self.chapter, **self.meta), "results": [asdict(r) for r in self.rows]},
        )
        return path


def results_table(rows: list[dict], *, quick: bool, first: tuple[str, ...] = ()) -> str:
    """Rows of ``{"name", "metric", "value", "book"}`` (plus the keys in ``first``, as leading columns) as a
    Markdown table (a smoke run's as the module docstring says)."""
    lead = [[str(r[k]) for k in first] for r in rows]
    if quick:
        return (
            SMOKE_NOTE
            + "\n"
            + format_table(
                [*first, "configuration", "metric", "fdl (smoke run)"],
                [[*x, r["name"], r["metric"], _fmt(r["value"])] for x, r in zip(lead, rows, strict=True)],
                quick=False,
            )
        )
    return format_table(
        [*first, "configuration", "metric", "book", "fdl"],
        [[*x, r["name"], r["metric"], _fmt(r["book"]), _fmt(r["value"])] for x, r in zip(lead, rows, strict=True)],
        quick=False,
    )


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and (math.isnan(v) or abs(v) >= 100 or v == int(v)):
        return f"{v:.2f}"
    return f"{v:.5g}" if isinstance(v, float) else str(v)


def format_table(header: list[str], rows: list[list], *, quick: bool | None = None) -> str:
    """A Markdown table; in a smoke run (``quick=True``, or by default :func:`is_smoke` of the options
    :func:`parse_args` returned) the columns whose header starts with "book" are left out, after
    :data:`SMOKE_NOTE`."""
    if quick is None:
        quick = is_smoke(_last_args)
    if quick:
        keep = [i for i, h in enumerate(header) if not str(h).lower().startswith("book")]
        if len(keep) < len(header):
            body = format_table([header[i] for i in keep], [[row[i] for i in keep] for row in rows], quick=False)
            return SMOKE_NOTE + "\n" + body
    cells = [header] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
    return "\n".join(
        [line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in cells[1:]]
    )


def mean_sd(values) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    values = [float(v) for v in values]
    m = sum(values) / len(values)
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return m, sd


def z_score(values, figure: float) -> float:
    """Where ``figure`` (a book figure) lies in the distribution of ``values`` (fdl's runs): ``(figure - mean)
    / sd``, with the sample standard deviation; NaN for fewer than two values or no spread."""
    m, sd = mean_sd(values)
    return (float(figure) - m) / sd if len(values) > 1 and sd > 0 else math.nan


def position(values, figure: float | None) -> str:
    """``figure``'s place among ``values`` for a table: its z-score and how many runs lie below it, e.g.
    ``"z -0.42 (4/10 below)"``; ``"-"`` when there is no figure."""
    if figure is None:
        return "-"
    below = sum(float(v) < float(figure) for v in values)
    return f"z {z_score(values, figure):+.2f} ({below}/{len(values)} below)"
