"""The one plot helper: line charts written as PNG files (matplotlib, headless).

    with png(path, panels=2, size=(9, 3.6)) as (left, right):
        curve(left, logged(log_history, "loss"), "train")
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def png(path: Path, panels: int = 1, size: tuple[float, float] = (6, 4)) -> Iterator[list]:
    """The axes of a figure of `panels` side by side, saved to `path` (grid on) when the block ends.
    Without matplotlib (an optional dependency) the axes are None and nothing is written."""
    try:
        import matplotlib
    except ImportError:
        print(f"matplotlib is not installed: no plot {path}", file=sys.stderr)
        yield [None] * panels
        return
    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, panels, figsize=size)
    axes = list(axes) if panels > 1 else [axes]
    try:
        yield axes
        for ax in axes:
            ax.grid(alpha=0.3)
        fig.tight_layout()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)


def logged(log: list[dict], key: str) -> list[tuple[float, float]]:
    """(step, value) of every entry of a training log that has `key`."""
    return [(entry["step"], entry[key]) for entry in log if entry.get(key) is not None]


def curve(ax, points: list[tuple[float, float]], label: str | None = None) -> None:
    """One line through `points` (markers while there are few), on `ax` when there is a plot."""
    if ax is not None and points:
        ax.plot(*zip(*points), marker="o" if len(points) < 30 else None, markersize=3, label=label)
