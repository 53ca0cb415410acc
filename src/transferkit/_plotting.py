"""The one matplotlib set-up, save and close that every figure goes through (the user's
workflows and the claims alike); matplotlib is imported only when a figure is drawn."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["figure"]


@contextlib.contextmanager
def figure(
    out_dir: str | os.PathLike[str], name: str, figsize: tuple[float, float] = (6.4, 4.0),
    dpi: int = 110, tight: bool = True,
) -> Iterator[tuple[Any, Path]]:
    """A new figure, saved as ``out_dir/<name>.png`` when the block ends, then closed.

    Yields ``(figure, path)``; draw with ``fig.subplots(...)`` or ``fig.add_subplot(...)``.
    The figure is closed even when drawing fails (nothing is saved then), and the PNG is
    written atomically (a killed run never leaves half a file).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with figure(d, "line") as (fig, path):
    ...         _ = fig.add_subplot().plot([0, 1], [1, 0])
    ...     path.name, path.stat().st_size > 0
    ('line.png', True)
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ._io import atomic_write

    fig = plt.figure(figsize=figsize)
    path = Path(out_dir) / f"{name}.png"
    try:
        yield fig, path
        if tight:
            fig.tight_layout()
        atomic_write(path, lambda f: fig.savefig(f, dpi=dpi, format="png"))
    finally:
        plt.close(fig)
