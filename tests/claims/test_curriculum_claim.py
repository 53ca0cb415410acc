"""The ``curriculum`` recipe with a small budget: it runs, its arms are what they say, and
its schedule and scores are the authors'."""

import numpy as np
import pytest
import torch

from transferkit.claims.recipes import curriculum as recipe
from transferkit.data import fashion_mnist_available

from .small import run_small

needs_fashion = pytest.mark.skipif(not fashion_mnist_available(),
                                   reason="Fashion-MNIST (dataset-fashion-mnist) not installed")


def test_decay_is_the_authors_step_decay_with_a_floor():
    cfg = recipe.CurriculumConfig(decay_every=100, min_lr=1e-4)
    factor = recipe._decay(0.03, 1.5, cfg)
    assert factor(0) == factor(99) == 1.0
    assert factor(100) == pytest.approx(1 / 1.5) and factor(250) == pytest.approx(1 / 2.25)
    assert 0.03 * factor(10_000) == pytest.approx(1e-4)   # never below the floor


def test_arms_follow_the_config():
    assert "curriculum-crossfit" in recipe.arms(recipe.CurriculumConfig(crossfit=True))
    assert recipe.arms(recipe.CurriculumConfig(crossfit=False)) == (
        "vanilla", "curriculum", "random-pacing", "anti-curriculum")


def test_authors_scores_are_in_sample_and_reward_memory():
    """In-sample scores (the authors') sit above cross-fitted ones when one of 20 features
    carries a weak signal: the SVC remembers the images it was fitted on."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(120) % 3
    feats = torch.randn(120, 20, generator=g)
    feats[:, 0] += 1.5 * y
    authors = recipe._scores(feats, y, 0, crossfit=False)
    ours = recipe._scores(feats, y, 0, crossfit=True)
    assert authors.shape == ours.shape == (120,)
    assert authors.mean() > ours.mean() + 0.05


@needs_fashion
@pytest.mark.slow
@pytest.mark.ci_slow
def test_curriculum_recipe_runs_all_arms(tmp_path):
    result, mean = run_small("curriculum", tmp_path, 1, pool_per_class=60, per_class=40,
                             val_per_class=10, test_per_class=40, image_size=32, steps=120,
                             lrs=(0.03, 0.1), decays=(1.1,), eval_every=24, crossfit=True)
    for arm in recipe.arms(recipe.CurriculumConfig(crossfit=True)):
        assert 0.0 < mean[arm] <= 1.0
        assert f"final/{arm}" in mean and f"early/{arm}" in mean
    extras = next(iter(result["extras"].values()))
    for arm, chosen in extras["chosen"].items():
        assert chosen["lr"] in (0.03, 0.1) and chosen["decay"] == 1.1
        assert chosen["at_edge"] == ["lr"]          # a two-point grid: always at an end
        assert extras["curves"][arm]["steps"] == [24, 48, 72, 96, 120]
    # the cross-fitted arm runs at the curriculum arm's schedule
    assert extras["chosen"]["curriculum-crossfit"]["lr"] == extras["chosen"]["curriculum"]["lr"]
    assert set(extras["score_mean"]) == {"authors", "crossfit"}


@needs_fashion
def test_splits_are_disjoint_and_standardised():
    cfg = recipe.CurriculumConfig(pool_per_class=30, per_class=10, val_per_class=5,
                                  test_per_class=7, image_size=32)
    data, feats = recipe._data(cfg, seed=3)
    x, y = data["train"]
    assert x.shape == (50, 1, 28, 28) and len(feats) == 50
    assert np.bincount(y.numpy()).tolist() == [10] * 5
    assert len(data["val"][1]) == 25 and len(data["test"][1]) == 35
    assert abs(float(x.mean())) < 1e-4 and abs(float(x.std()) - 1) < 1e-3
    # no training image is also a validation image
    flat = {tuple(r.tolist()) for r in x.flatten(1)[:, ::7]}
    assert not flat & {tuple(r.tolist()) for r in data["val"][0].flatten(1)[:, ::7]}


def test_an_early_window_without_an_evaluation_is_refused():
    cfg = recipe.CurriculumConfig(steps=100, eval_every=50, early_fraction=0.2)
    with pytest.raises(ValueError, match="early window"):
        recipe.run(cfg, 0)


def test_no_decay_is_not_an_end_of_the_grid(monkeypatch):
    cfg = recipe.CurriculumConfig(lrs=(0.03, 0.1, 0.3), decays=(1.0, 1.2))
    curve = {"steps": [50, 100], "val": [0.5, 0.6], "test": [0.4, 0.5]}
    monkeypatch.setattr(recipe, "_train", lambda arm, lr, decay, *a: {
        **curve, "val": [v + (lr == 0.1) * 0.1 + (decay == 1.0) * 0.01 for v in curve["val"]]})
    out = recipe._tuned("vanilla", {}, None, cfg, 0)
    assert (out["lr"], out["decay"], out["at_edge"]) == (0.1, 1.0, [])
    out = recipe._tuned("vanilla", {}, None, cfg, 0, grid=((0.3, 1.2),))
    assert (out["lr"], out["decay"], out["at_edge"]) == (0.3, 1.2, ["lr", "decay"])


def test_tune_schedules_keeps_each_arms_best_mean_validation_area(monkeypatch):
    cfg = recipe.CurriculumConfig(lrs=(0.1, 0.3), decays=(1.0, 1.2), crossfit=True)
    monkeypatch.setattr(recipe, "_data", lambda cfg, seed: (
        {"train": (None, torch.zeros(4, dtype=torch.long))}, None))
    monkeypatch.setattr(recipe, "_scores", lambda *a, **k: np.zeros(4))
    best = {"vanilla": (0.3, 1.2), "curriculum": (0.1, 1.0)}

    def train(arm, lr, decay, data, scores, cfg, seed):
        good = best.get(arm, (0.1, 1.2)) == (lr, decay)
        return {"steps": [50], "val": [0.5 + 0.1 * good + 0.01 * seed], "test": [0.0]}

    monkeypatch.setattr(recipe, "_train", train)
    out = recipe.tune_schedules(cfg, seeds=(0, 1))
    assert set(out) == {"vanilla", "curriculum", "random-pacing", "anti-curriculum"}
    assert (out["vanilla"]["lr"], out["vanilla"]["decay"]) == (0.3, 1.2)
    assert (out["curriculum"]["lr"], out["curriculum"]["decay"]) == (0.1, 1.0)
    assert out["vanilla"]["val_area"]["0.3/1.2"] == pytest.approx(0.605)


def test_a_diverged_schedule_is_not_chosen_and_all_diverged_is_a_nan_result():
    g = torch.Generator().manual_seed(0)
    part = (torch.randn(20, 1, 28, 28, generator=g), torch.arange(20) % 5)
    data = {"train": part, "val": part, "test": part}
    cfg = recipe.CurriculumConfig(steps=20, eval_every=10, early_fraction=0.5, batch_size=10,
                                  lrs=(0.01, 1e9),
                                  decays=(1.0,))
    assert recipe._train("vanilla", 1e9, 1.0, data, None, cfg, 0)["val"] == []
    out = recipe._tuned("vanilla", data, None, cfg, 0)
    assert out["lr"] == 0.01 and out["steps"] == [10, 20]
    out = recipe._tuned("vanilla", data, None, cfg, 0, grid=((1e9, 1.0),))
    assert out["diverged"] and np.isnan(out["area"]) and np.isnan(out["final"])


def test_the_curve_plot_leaves_out_a_diverged_seed(tmp_path):
    curves = {"vanilla": {"steps": [50, 100], "test": [0.5, 0.6]}}
    result = {"config": {"classes": [0, 2, 3, 4, 6], "early_fraction": 0.2, "steps": 100,
                         "batch_size": 100, "per_class": 500},
              "extras": {"4000": {"curves": {**curves,
                                             "curriculum": {"steps": [], "test": []}}},
                         "4001": {"curves": {**curves, "curriculum": curves["vanilla"]}}}}
    paths = recipe.plot(result, tmp_path)
    assert [p.name for p in paths] == ["curriculum_curves.png", "curriculum_theory.png"]
