"""Slow tests of the ``l2sp`` claim (Li, Grandvalet, Davoine, ICML 2018)."""

from __future__ import annotations

import dataclasses

import pytest

from transferkit.claims.base import create_claim
from transferkit.claims.recipes._digits import SourceSpec
from transferkit.claims.recipes.l2sp import ARMS, L2SPConfig, plot, run


def tiny(**kw: object) -> L2SPConfig:
    base = L2SPConfig(
        seeds=1,
        settings=("overlap-k3",),
        steps=80,
        alphas=(0.01, 0.1, 1.0),
        overlap_source=SourceSpec(steps=300),
        disjoint_source=SourceSpec(classes=(0, 1, 2, 3, 4), steps=300),
        fisher_examples=100,
    )
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.ci_slow
def test_l2sp_recipe_runs_and_l2_collapses_where_l2sp_does_not(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = tiny()
    res = run(cfg, seed=0)
    expected = {f"overlap-k3/{a}" for a in ARMS} | {
        "overlap-k3/l2@alpha=0.1",
        "overlap-k3/l2sp@alpha=0.1",
    }
    assert set(res.arms) == expected
    assert all(0.0 <= v <= 1.0 for v in res.arms.values())
    sweep = res.extras["sweep"]["overlap-k3"]
    for arm in ARMS:
        s = sweep[arm]
        # alpha is chosen by validation accuracy, then validation cross-entropy
        best = max(range(len(s["alphas"])), key=lambda i: (s["val_acc"][i], -s["val_ce"][i], -i))
        assert s["chosen"] == s["alphas"][best]
        assert res.arms[f"overlap-k3/{arm}"] == s["test_acc"][best]
    # the paper's robustness: strong L2 drags the pretrained weights to 0 (chance accuracy),
    # strong L2-SP keeps them at the start point and keeps the source features useful
    assert sweep["l2"]["test_acc"][-1] < 0.3
    assert sweep["l2sp"]["test_acc"][-1] > sweep["l2"]["test_acc"][-1] + 0.3
    # and the pull towards the start point shrinks the drift as alpha grows
    drift = sweep["l2sp"]["drift"]
    assert drift[0] > drift[1] > drift[2]
    assert sweep["l2sp"]["drift"][1] < sweep["l2"]["drift"][1]
    # the plot hook draws the alpha sweep
    result = {"budget": "test", "extras": {"0": res.extras}}
    paths = plot(result, tmp_path)
    assert len(paths) == 1 and paths[0].exists() and paths[0].stat().st_size > 1000


@pytest.mark.slow
def test_l2sp_recipe_is_reproducible_and_seed_dependent() -> None:
    cfg = tiny(settings=("disjoint-k3",), alphas=(0.1,), steps=40)
    a, b, c = run(cfg, 0), run(cfg, 0), run(cfg, 1)
    assert a.arms == b.arms
    assert a.arms != c.arms


@pytest.mark.slow
def test_l2sp_claim_is_registered_with_both_budgets() -> None:
    claim = create_claim("l2sp")
    assert claim.config("full").seeds >= 10
    assert claim.config("quick").seeds >= 3
    own = [c for c in claim.comparisons if c.own]
    assert {(c.method, c.baseline) for c in own} == {
        ("overlap-k3/l2sp", "overlap-k3/l2"),
        ("overlap-k10/l2sp", "overlap-k10/l2"),
    }
    assert all(c.required_delta == 0.005 for c in own)
    for budget in ("quick", "full"):
        assert 0.1 in claim.config(budget).alphas
