"""What both kinds of run share: the header of results.json, the interleaved timing, and the written output."""

from __future__ import annotations

import json
import os

from .device import machine


def new_results(args, repeats: int, probe, **extra) -> dict:
    """results.json's header (machine, device, precision, load, repeats, ...) and an empty ``workloads``."""
    return {
        "machine": machine(args.device, probe),
        "device": args.device,
        "precision": args.precision,
        "load_start": os.getloadavg(),
        "repeats": repeats,
        "quick": args.quick,
        **extra,
        "conv_impl": args.conv_impl,
        "workloads": {},
    }


def interleave(kinds: list, repeats: int, ms) -> dict:
    """``{kind: [ms per step of timed unit 1, 2, ...]}``: repetition ``r`` times unit ``1 + r`` of every kind
    once, in an order rotated by ``r``, so that the kinds share the machine's noise; ``ms(kind, unit)`` times
    one unit."""
    times = {kind: [] for kind in kinds}
    for r in range(repeats):
        for kind in kinds[r % len(kinds) :] + kinds[: r % len(kinds)]:
            times[kind].append(ms(kind, 1 + r))
    return times


def finish(results: dict, text: str, out, names: tuple[str, str]) -> None:
    """Print the table and the load at the end; with ``out``, write ``names`` (the JSON and Markdown files)."""
    results["load_end"] = os.getloadavg()
    load = ", ".join(f"{x:.2f}" for x in results["load_end"])
    print(f"\n{text}\n\nload average (1, 5, 15 min) at the end: {load}")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / names[0]).write_text(json.dumps(results, indent=2))
        (out / names[1]).write_text(text + "\n")
        print(f"wrote {out / names[0]} and {out / names[1]}")
