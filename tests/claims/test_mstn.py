"""Slow: the `mstn` recipe runs end to end and its comparisons point the claimed way."""

from __future__ import annotations

import dataclasses

import pytest

from transferkit.claims.base import create_claim
from transferkit.claims.recipes.mstn import ARMS


def test_mstn_is_registered_with_its_comparisons():
    claim = create_claim("mstn")
    own = {(c.method, c.baseline, c.required_delta) for c in claim.comparisons if c.own}
    assert own == {("mstn", "dann", 0.01), ("dann", "source-only", 0.01)}
    assert claim.config("full").seeds >= 10
    q, f = claim.config("quick"), claim.config("full")
    assert q.batch_size == f.batch_size


@pytest.mark.slow
def test_mstn_recipe_direction_and_plot(tmp_path):
    claim = create_claim("mstn")
    cfg = claim.config("quick")
    per_seed = {s: claim.run(cfg, s) for s in range(2)}
    for res in per_seed.values():
        assert set(ARMS) <= set(res.arms)
        assert all(0.0 <= v <= 1.0 for v in res.arms.values())
    mean = {a: sum(r.arms[a] for r in per_seed.values()) / 2 for a in ARMS}
    # the adaptation baseline DANN clearly beats training on the source alone
    assert mean["dann"] > mean["source-only"]
    assert mean["mstn"] > mean["source-only"]
    result = {
        "claim": "mstn",
        "arms": {a: [r.arms[a] for r in per_seed.values()] for a in per_seed[0].arms},
        "extras": {str(s): r.extras for s, r in per_seed.items()},
    }
    paths = claim.plot(result, tmp_path)
    assert paths and all(p.exists() and p.stat().st_size > 0 for p in paths)


@pytest.mark.slow
@pytest.mark.ci_slow
def test_mstn_recipe_is_reproducible_on_a_tiny_budget():
    claim = create_claim("mstn")
    cfg = dataclasses.replace(
        claim.config("quick"),
        steps=60,
        hidden=(32,),
        bottleneck=16,
        disc_hidden=(16,),
        select_every=20,
        plot_points=20,
    )
    a, b = claim.run(cfg, 3), claim.run(cfg, 3)
    assert a.arms == b.arms
    c = claim.run(cfg, 4)
    assert c.arms != a.arms
