"""What a claim is: a recipe, its budgets, and the comparisons that make its verdict.

A recipe module (one file in :mod:`transferkit.claims.recipes`) builds a :class:`Claim`
and calls :func:`register_claim`. The shared runner (:mod:`transferkit.claims.runner`)
does everything else: seeds, parallel processes, statistics, JSON, report and plots. A
recipe never defines its own loop, argument parser or statistics.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._registry import Registry

__all__ = ["BROKEN", "CLAIMS", "Bound", "Claim", "Comparison", "NonInferiority", "SeedResult",
           "create_claim", "list_claims", "load_recipes", "register_claim"]


@dataclass(frozen=True)
class Comparison:
    """Superiority: ``method`` beats ``baseline`` (arm names) by more than ``required_delta``.

    It holds when the one-sided paired t-test of H0: mean(d) <= required_delta gives
    p < 0.05, ``d`` being the per-seed improvement in the claim's better direction; it does
    not hold when the test of H0: mean(d) >= required_delta does, and is inconclusive
    otherwise (see :mod:`transferkit.claims.stats`). ``own`` comparisons decide the
    claim's verdict; the others are reported beside it. An ``optional`` one (never ``own``)
    is made only when the budget ran its arms (e.g. label counts only the full budget
    runs).

    Examples
    --------
    >>> c = Comparison("better", "base", required_delta=0.05)
    >>> res = c.evaluate({"better": [0.62, 0.66, 0.64, 0.65, 0.63],
    ...                   "base": [0.50, 0.51, 0.50, 0.52, 0.49]}, higher_is_better=True)
    >>> c.label, res["verdict"]
    ('better vs base', 'holds')
    """

    method: str
    baseline: str
    required_delta: float
    own: bool = True
    optional: bool = False

    def __post_init__(self) -> None:
        if self.optional and self.own:
            raise ValueError(f"comparison {self.label!r}: an optional comparison cannot be "
                             f"one that decides the verdict (own=True)")

    @property
    def label(self) -> str:
        return f"{self.method} vs {self.baseline}"

    def evaluate(
        self, arms: Mapping[str, Sequence[float]], higher_is_better: bool
    ) -> dict[str, Any]:
        from .stats import paired_comparison

        return paired_comparison(
            arms[self.method], arms[self.baseline], higher_is_better, self.required_delta
        )

    def arms(self) -> tuple[str, ...]:
        return (self.method, self.baseline)


@dataclass(frozen=True, init=False)
class NonInferiority(Comparison):
    """"At least as good": ``method`` is worse than ``baseline`` by less than ``margin``.

    The paired test of H0: mean(d) <= -margin; ``required_delta`` is ``-margin``.

    Examples
    --------
    >>> c = NonInferiority("cheap", "costly", margin=0.02)   # not worse by more than 0.02
    >>> c.evaluate({"cheap": [0.70, 0.71, 0.69, 0.70, 0.70],
    ...             "costly": [0.70, 0.70, 0.70, 0.71, 0.69]}, True)["verdict"]
    'holds'
    """

    def __init__(self, method: str, baseline: str, margin: float, own: bool = True) -> None:
        if not margin > 0:
            raise ValueError(f"a non-inferiority margin must be > 0; got {margin}")
        object.__setattr__(self, "method", method)
        object.__setattr__(self, "baseline", baseline)
        object.__setattr__(self, "required_delta", -float(margin))
        object.__setattr__(self, "own", own)

    @property
    def label(self) -> str:
        return f"{self.method} not worse than {self.baseline} by {-self.required_delta:g}"


@dataclass(frozen=True)
class Bound:
    """One arm against a constant: its mean lies ``above`` (or below) ``bound``.

    A one-sample one-sided t-test over seeds (H0: the arm is on the wrong side of the
    bound, or on it).

    Examples
    --------
    >>> b = Bound("coverage", bound=0.9, above=True)        # a value against a constant
    >>> b.evaluate({"coverage": [0.95, 0.96, 0.94, 0.97, 0.95]}, True)["verdict"]
    'holds'
    """

    method: str
    bound: float
    above: bool
    own: bool = True
    required_delta: float = 0.0

    @property
    def baseline(self) -> str:
        return f"{self.bound:g}"

    @property
    def label(self) -> str:
        return f"{self.method} {'>' if self.above else '<'} {self.bound:g}"

    def evaluate(
        self, arms: Mapping[str, Sequence[float]], higher_is_better: bool
    ) -> dict[str, Any]:
        from .stats import one_sample_comparison

        return one_sample_comparison(arms[self.method], self.bound, self.above,
                                     self.required_delta)

    def arms(self) -> tuple[str, ...]:
        return (self.method,)


@dataclass
class SeedResult:
    """What a recipe's ``run(cfg, seed)`` returns.

    ``arms`` maps arm name -> the claim's metric for this seed. ``extras`` holds anything
    JSON-serialisable the claim's plots need (curves over time, sweeps), per seed.

    Examples
    --------
    What a recipe's ``run`` may return besides a plain dict of arms: extras (curves,
    diagnostics) go to the JSON and the plots, not to the verdict.

    >>> SeedResult({"base": 0.5, "better": 0.6}, extras={"curve": [0.1, 0.3]}).arms["better"]
    0.6
    """

    arms: dict[str, float]
    extras: dict[str, Any] = field(default_factory=dict)


RunFn = Callable[[Any, int], "SeedResult | Mapping[str, float]"]
PlotFn = Callable[[Mapping[str, Any], Path], list[Path]]


@dataclass(frozen=True)
class Claim:
    """A paper's central claim as a runnable recipe.

    Parameters
    ----------
    name : str
        Registry key (``"finetune"``, ``"l2sp"``, ...).
    paper : str
        Authors, title, venue and link.
    statement : str
        The claim in one sentence.
    metric : str
        What each arm's number is (``"target_accuracy"``).
    higher_is_better : bool
    bounds : (float, float), optional
        The range the metric cannot leave (``(0.0, 1.0)`` for an accuracy or a rate): each
        arm's interval over seeds is clipped to it, so a rate's interval never claims
        values it cannot take.
    budgets : mapping of str -> frozen dataclass
        At least ``"quick"`` and ``"full"``; each config has an int field ``seeds``.
    run : callable(cfg, seed) -> SeedResult or dict of arm -> float
        Must be a module-level function (it is pickled for ``--jobs``).
    comparisons : sequence of Comparison, NonInferiority or Bound
    plot : callable(result, out_dir) -> list of paths, optional
        Extra figures beyond the per-seed plot every claim gets.
    notes : str
        Markdown printed under the claim in the report (reference numbers, caveats).
    series : int
        The confirmation series the full budget runs (seeds ``1000*series ..``). Start at
        1; move to the next unused series whenever a setting was changed after looking at
        a full verdict, and say so in ``notes``.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Budget:
    ...     seeds: int = 5
    >>> def run(cfg, seed):                          # one seed: every arm's metric
    ...     return {"base": 0.50 + seed / 100, "better": 0.58 + seed / 90}
    >>> claim = Claim(name="demo", paper="-", statement="better beats base", metric="accuracy",
    ...               higher_is_better=True, budgets={"quick": Budget(), "full": Budget(10)},
    ...               run=run, comparisons=[Comparison("better", "base", 0.05)])
    >>> claim.config("full").seeds
    10
    """

    name: str
    paper: str
    statement: str
    metric: str
    higher_is_better: bool
    budgets: Mapping[str, Any]
    run: RunFn
    comparisons: Sequence[Comparison | Bound]
    plot: PlotFn | None = None
    notes: str = ""
    series: int = 1
    bounds: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.bounds is not None and not (len(self.bounds) == 2
                                            and self.bounds[0] < self.bounds[1]):
            raise ValueError(f"claim {self.name!r}: bounds must be (low, high) with low < "
                             f"high; got {self.bounds!r}")
        if not (isinstance(self.series, int) and self.series >= 1):
            raise ValueError(f"claim {self.name!r}: series must be a whole number >= 1; "
                             f"got {self.series!r}")
        for needed in ("quick", "full"):
            if needed not in self.budgets:
                raise ValueError(f"claim {self.name!r} has no {needed!r} budget")
        for budget, cfg in self.budgets.items():
            if not dataclasses.is_dataclass(cfg) or not hasattr(cfg, "seeds"):
                raise TypeError(
                    f"claim {self.name!r}: budget {budget!r} must be a dataclass with `seeds`"
                )

    def config(self, budget: str) -> Any:
        try:
            return self.budgets[budget]
        except KeyError:
            raise KeyError(
                f"claim {self.name!r} has no budget {budget!r}; it has {sorted(self.budgets)}"
            ) from None


CLAIMS: Registry[Claim] = Registry("claim")
BROKEN: dict[str, str] = {}
"""Recipe modules that failed to import, with the error (so one broken recipe does not
take the others down; the CLI reports them)."""
_loaded = False


def register_claim(claim: Claim | None = None, /, **fields: Any) -> Any:
    """Add a claim to the registry (recipe modules call this at import).

    Either ``register_claim(Claim(...))``, which returns the claim, or, as a decorator of
    the recipe's run function, ``@register_claim(name=..., paper=..., ...)`` with every
    field of :class:`Claim` but ``run``, which returns the function unchanged.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Cfg:
    ...     seeds: int = 5
    >>> @register_claim(name="demo", paper="-", statement="b beats a", metric="accuracy",
    ...                 higher_is_better=True, budgets={"quick": Cfg(), "full": Cfg(10)},
    ...                 comparisons=[Comparison("b", "a", 0.0)])
    ... def run(cfg, seed):
    ...     return {"a": 0.5, "b": 0.6 + 0.01 * seed}
    >>> create_claim("demo").statement
    'b beats a'
    >>> CLAIMS.unregister("demo")
    """
    if claim is not None:
        if fields:
            raise TypeError("register_claim takes a Claim or, as a decorator, its fields; "
                            "not both")
        return CLAIMS.register(claim.name, claim)

    def wrap(run: RunFn) -> RunFn:
        CLAIMS.register(fields["name"], Claim(run=run, **fields))
        return run

    return wrap


def _load_recipes() -> None:
    global _loaded
    if _loaded:
        return
    from . import recipes

    for info in pkgutil.iter_modules(recipes.__path__):
        if not info.name.startswith("_"):
            try:
                importlib.import_module(f"{recipes.__name__}.{info.name}")
            except Exception as exc:
                BROKEN[info.name] = f"{type(exc).__name__}: {exc}"
    _loaded = True


def create_claim(name: str) -> Claim:
    """The registered claim called ``name`` (importing the recipes on first use).

    Examples
    --------
    >>> create_claim("gradnorm").metric
    'delta_m_percent'
    """
    _load_recipes()
    return CLAIMS.get(name)


get_claim = create_claim  # the name used before the registries shared one API


def load_recipes() -> None:
    """Import every recipe module (each registers its claim); :data:`BROKEN` keeps the
    errors of those that fail.

    Examples
    --------
    >>> load_recipes()
    >>> BROKEN                                        # every recipe imported
    {}
    """
    _load_recipes()


def list_claims() -> list[str]:
    """Names of all registered claims.

    Examples
    --------
    >>> {"l2sp", "gradnorm", "bbse-correction"} <= set(list_claims())
    True
    """
    _load_recipes()
    return CLAIMS.names()
