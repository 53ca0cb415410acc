"""The one matplotlib set-up, save and close that every claim's figures go through."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
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
