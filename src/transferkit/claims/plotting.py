"""Figure helpers of the claims' plots; :func:`figure` (the one matplotlib set-up, save and
close) lives below the claims and the workflows, in :mod:`transferkit._plotting`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._plotting import figure

__all__ = ["bars_with_intervals", "figure"]


def bars_with_intervals(ax: Any, labels: Sequence[str], summary: Mapping[str, Any],
                        keys: Sequence[str], scale: float = 1.0) -> list[float]:
    """One bar per arm: its mean over seeds (times ``scale``) with the 95% interval as
    error bars, each arm in its own colour. Returns the plotted means.

    Examples
    --------
    >>> import tempfile
    >>> summary = {"a": {"mean": 0.8, "ci95": [0.75, 0.85]},
    ...            "b": {"mean": 0.9, "ci95": [0.88, 0.92]}}
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with figure(d, "arms") as (fig, path):
    ...         bars_with_intervals(fig.add_subplot(), ["A", "B"], summary, ["a", "b"], scale=100)
    ...     path.exists()
    [80.0, 90.0]
    True
    """
    means = [scale * summary[k]["mean"] for k in keys]
    lo = [m - scale * summary[k]["ci95"][0] for m, k in zip(means, keys, strict=True)]
    hi = [scale * summary[k]["ci95"][1] - m for m, k in zip(means, keys, strict=True)]
    ax.bar(list(labels), means, yerr=[lo, hi], capsize=3,
           color=[f"C{j}" for j in range(len(keys))])
    ax.tick_params(axis="x", labelsize=8)
    return means
