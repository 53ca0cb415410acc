"""A toy claim for the examples of the documentation and for tests of one's own executors,
reports and record handling: :func:`demo_claim`."""

from __future__ import annotations

from dataclasses import dataclass

from .base import Claim, Comparison

__all__ = ["DemoBudget", "demo_claim"]


@dataclass(frozen=True)
class DemoBudget:
    """The budget of :func:`demo_claim`: seeds and the better arm's gain.

    Examples
    --------
    >>> DemoBudget(seeds=10).gain
    0.08
    """

    seeds: int = 5
    gain: float = 0.08


def _demo_run(cfg: DemoBudget, seed: int) -> dict[str, float]:
    return {"base": 0.50 + seed / 100, "better": 0.50 + cfg.gain + seed / 90}


def demo_claim(name: str = "demo") -> Claim:
    """A toy claim: arm ``better`` beats ``base`` by about 0.08 on every seed, against a
    required 0.05 (it holds), in no time; its recipe is module-level, so process pools and
    Ray can run it too.

    Examples
    --------
    >>> import tempfile
    >>> from transferkit.claims.runner import run_claim
    >>> with tempfile.TemporaryDirectory() as out:
    ...     run_claim(demo_claim(), "quick", out_dir=out)["verdict"]
    'holds'
    """
    return Claim(name=name, paper="-", statement="better beats base by more than 0.05",
                 metric="accuracy", higher_is_better=True,
                 budgets={"quick": DemoBudget(), "full": DemoBudget(seeds=10)},
                 run=_demo_run, comparisons=[Comparison("better", "base", 0.05)])
