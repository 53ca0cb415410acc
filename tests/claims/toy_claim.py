"""A tiny claim used by the runner's tests (importable by worker processes)."""

from dataclasses import dataclass

from transferkit.claims.base import Claim, Comparison, SeedResult


@dataclass(frozen=True)
class ToyConfig:
    seeds: int = 6
    gain: float = 0.1
    fail_on_seed: int = -1
    diverge_on_seed: int = -1


def run(cfg: ToyConfig, seed: int) -> SeedResult:
    if seed == cfg.fail_on_seed:
        raise RuntimeError(f"toy failure on seed {seed}")
    noise = ((seed * 7919) % 13) / 1000.0
    better = float("nan") if seed == cfg.diverge_on_seed else 0.5 + cfg.gain + 2 * noise
    return SeedResult(
        {"base": 0.5 + noise, "better": better},
        extras={"curve": [seed, seed + 1]},
    )


def make(gain: float = 0.1, fail_on_seed: int = -1, name: str = "toy",
         diverge_on_seed: int = -1, comparisons=None) -> Claim:
    cfg = ToyConfig(gain=gain, fail_on_seed=fail_on_seed, diverge_on_seed=diverge_on_seed)
    return Claim(
        name=name,
        paper="Nobody, A toy. 2026",
        statement="better beats base",
        metric="score",
        higher_is_better=True,
        budgets={"quick": cfg, "full": cfg},
        run=run,
        comparisons=comparisons or [Comparison("better", "base", 0.05)],
    )
