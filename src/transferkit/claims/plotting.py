"""The one matplotlib set-up, save and close that every claim's figures go through."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def figure(
    out_dir: str | os.PathLike[str], name: str, figsize: tuple[float, float] = (6.4, 4.0),
    dpi: int = 110, tight: bool = True,
) -> Iterator[tuple[Any, Path]]:
    """A new figure, saved as ``out_dir/<name>.png`` when the block ends, then closed.

    Yields ``(figure, path)``; draw with ``fig.subplots(...)`` or ``fig.add_subplot(...)``.
    The figure is closed even when drawing fails (nothing is saved then).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=figsize)
    path = Path(out_dir) / f"{name}.png"
    try:
        yield fig, path
        if tight:
            fig.tight_layout()
        fig.savefig(path, dpi=dpi)
    finally:
        plt.close(fig)


def bars_with_intervals(ax: Any, labels: Sequence[str], summary: Mapping[str, Any],
                        keys: Sequence[str], scale: float = 1.0) -> list[float]:
    """One bar per arm: its mean over seeds (times ``scale``) with the 95% interval as
    error bars, each arm in its own colour. Returns the plotted means."""
    means = [scale * summary[k]["mean"] for k in keys]
    lo = [m - scale * summary[k]["ci95"][0] for m, k in zip(means, keys, strict=True)]
    hi = [scale * summary[k]["ci95"][1] - m for m, k in zip(means, keys, strict=True)]
    ax.bar(list(labels), means, yerr=[lo, hi], capsize=3,
           color=[f"C{j}" for j in range(len(keys))])
    ax.tick_params(axis="x", labelsize=8)
    return means
