"""Pictures for the experiment scripts, saved as PNG files in their ``--out`` directory (the ``plot`` extra).

The scripts import this module as a sibling (their directory is on ``sys.path`` when run as
``python experiments/chNN_name.py``). matplotlib is imported inside :func:`pyplot` only, so a script runs
without it: every function here then prints one note and returns ``None`` instead of a path. No module of
the ``fdl`` package imports matplotlib.

Each function takes the output directory and a file name and returns the path written (or ``None``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

_NOTE_SHOWN = False


def pyplot():
    """``matplotlib.pyplot`` with the non-interactive Agg backend, or ``None`` (with a note) if absent."""
    global _NOTE_SHOWN
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        if not _NOTE_SHOWN:
            print("matplotlib is not installed (pip install -e '.[plot]'): no pictures are written")
            _NOTE_SHOWN = True
        return None
    return plt


def save(fig, out, name: str, dpi: int = 90) -> Path:
    """Write ``fig`` to ``out/name``, close it and print where it went."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    fig.savefig(path, dpi=dpi)
    fig.clf()
    import matplotlib.pyplot as plt

    plt.close(fig)
    print(f"saved {path}")
    return path


def curves(
    out, name: str, panels: list[tuple[str, str, dict]], *, xlabel: str, logy: bool = False, suptitle: str | None = None
) -> Path | None:
    """Line plots, one axes per panel ``(title, ylabel, {label: (x, y)})`` (loss curves)."""
    plt = pyplot()
    if plt is None:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for ax, (title, ylabel, series) in zip(axes[0], panels, strict=True):
        many = len(series) > 10  # more lines than the default colour cycle: tab20's 20 colours, none repeated
        for k, (label, (x, y)) in enumerate(series.items()):
            style = {"ls": "--", "color": "grey"} if "baseline" in label else {"marker": "." if len(x) < 30 else None}
            if many and "color" not in style:
                style["color"] = plt.get_cmap("tab20")(k % 20)
            ax.plot(x, y, label=label, **style)
        ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
        if logy:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return save(fig, out, name)


def predicted_vs_actual(out, name: str, panels: dict[str, tuple], *, unit: str = "") -> Path | None:
    """Scatter of predictions against targets, one axes per ``{title: (predicted, actual)}``, with y = x."""
    plt = pyplot()
    if plt is None:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4.2), squeeze=False)
    for ax, (title, (pred, actual)) in zip(axes[0], panels.items(), strict=True):
        pred, actual = np.ravel(pred), np.ravel(actual)
        lo, hi = min(pred.min(), actual.min()), max(pred.max(), actual.max())
        ax.scatter(actual, pred, s=8, alpha=0.6)
        ax.plot([lo, hi], [lo, hi], color="grey", lw=1, ls="--")
        ax.set(title=title, xlabel=f"actual {unit}".strip(), ylabel=f"predicted {unit}".strip())
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return save(fig, out, name)


def image_rows(out, name: str, rows: dict[str, np.ndarray], *, vmin=-1.0, vmax=1.0) -> Path | None:
    """Grey images in labelled rows ``{label: (n, H, W) or (n, 1, H, W)}``, e.g. originals above reconstructions."""
    plt = pyplot()
    if plt is None:
        return None
    n = max(len(images) for images in rows.values())
    fig, axes = plt.subplots(len(rows), n, figsize=(1.1 * n, 1.25 * len(rows)), squeeze=False)
    for r, (label, images) in enumerate(rows.items()):
        images = np.asarray(images).reshape(len(images), *np.shape(images)[-2:])
        for c in range(n):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(images):
                ax.imshow(images[c], cmap="gray", vmin=vmin, vmax=vmax)
            else:
                ax.axis("off")
        axes[r][0].set_ylabel(label, fontsize=8)
    fig.tight_layout()
    return save(fig, out, name)


def embedding(out, name: str, points: np.ndarray, labels: np.ndarray, *, title: str = "") -> Path | None:
    """A 2-D scatter of ``points`` (n, 2) coloured by integer ``labels`` (n,), e.g. t-SNE of encodings.

    The markers grow as the points get fewer (area 2 for 10 000 points, 4.5 for 2000, at most 10), so that a
    picture of a few thousand points is as easy to read as one of ten thousand.
    """
    plt = pyplot()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 6))
    cmap = plt.get_cmap("tab10")
    size = float(np.clip(2.0 * np.sqrt(10_000 / max(len(points), 1)), 2.0, 10.0))
    for k in np.unique(labels):
        sel = labels == k
        ax.scatter(points[sel, 0], points[sel, 1], s=size, color=cmap(int(k) % 10), label=str(k), alpha=0.7)
    ax.legend(markerscale=max(6 / np.sqrt(size / 2), 2), fontsize=8, loc="best", title="digit")
    ax.set(title=title, xticks=[], yticks=[])
    fig.tight_layout()
    return save(fig, out, name)
