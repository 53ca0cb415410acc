"""Small wording helpers for what the commands print."""

from __future__ import annotations

__all__ = ["duration"]


def duration(seconds: float) -> str:
    """``seconds`` as a person reads it in a progress line.

    Examples
    --------
    >>> duration(42.4), duration(125)
    ('42 s', '2 min 05 s')
    """
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"
