"""Curriculum: pacing, the sampler, the scorers, and the paper's two theorems."""

from functools import partial

import numpy as np
import pytest
import torch

from transferkit.curriculum import (
    ArrayScorer,
    CurriculumSampler,
    ModelScorer,
    TransferScorer,
    balanced_order,
    exponential_pacing,
    monte_carlo_gains,
    single_step_pacing,
    varied_exponential_pacing,
)
from transferkit.train import Stream


@pytest.mark.parametrize("pacing", [
    partial(exponential_pacing), partial(exponential_pacing, start=0.3, multiplier=1.2,
                                         step_length=7),
    partial(varied_exponential_pacing, step_lengths=(10, 50)), partial(single_step_pacing),
])
def test_pacing_functions_are_monotone_and_reach_all_the_data(pacing):
    values = [pacing(s) for s in range(0, 5000, 3)]
    assert all(0 < v <= 1 for v in values)
    assert all(b >= a for a, b in zip(values, values[1:], strict=False))
    assert values[-1] == 1.0


def test_pacing_arguments_are_validated():
    with pytest.raises(ValueError, match="multiplier must be > 1"):
        exponential_pacing(0, multiplier=1.0)
    with pytest.raises(ValueError, match="start must be a fraction"):
        exponential_pacing(0, start=0.0)
    with pytest.raises(ValueError, match="step must be an integer"):
        exponential_pacing(-1)


def _toy(n=200):
    labels = np.arange(n) % 4
    scores = np.random.default_rng(0).random(n)
    return scores, labels


def test_the_first_batches_come_from_the_easiest_fraction_and_are_balanced():
    scores, labels = _toy()
    pacing = partial(exponential_pacing, start=0.1, multiplier=2.0, step_length=10)
    s = CurriculumSampler(scores, labels, batch_size=8, pacing=pacing, seed=0)
    easiest = set(np.argsort(-scores)[:40].tolist())  # the 20 easiest of each... a superset
    first = set(s.order[:20].tolist())
    for draw in range(10):
        rows = s.indices(draw).tolist()
        assert set(rows) <= first and len(rows) == 8
    assert first <= easiest
    assert np.bincount(labels[s.order[:20]], minlength=4).tolist() == [5, 5, 5, 5]
    # the prefix grows with the pacing
    assert s.usable(0) == 20 and s.usable(10) == 40 and s.usable(100) == 200
    anti = CurriculumSampler(scores, labels, 8, pacing, order="anti", seed=0)
    hardest = set(np.argsort(scores)[:40].tolist())
    assert set(anti.order[:20].tolist()) <= hardest
    rand = CurriculumSampler(scores, labels, 8, pacing, order="random", seed=0)
    assert set(rand.order[:20].tolist()) != first


def test_sampler_batches_repeat_by_draw_and_plug_into_a_stream():
    scores, labels = _toy()
    s = CurriculumSampler(scores, labels, 8, partial(exponential_pacing, start=0.1), seed=3)
    assert torch.equal(s.indices(7), s.indices(7))
    stream = Stream(torch.randn(200, 2), torch.as_tensor(labels), sampler=s)
    x, y = stream.batch(0)
    assert x.shape == (8, 2)


def test_balanced_order_interleaves_classes():
    # order 5, 4, 3 (class 1), 2, 1, 0 (class 0): the first of each class, in order, then ...
    assert balanced_order([5, 4, 3, 2, 1, 0], [0, 0, 0, 1, 1, 1]).tolist() == [5, 2, 4, 1, 3, 0]


def test_the_transfer_scorer_sees_training_data_only_and_cross_fits():
    rng = np.random.default_rng(1)
    X = np.r_[rng.normal(-1.5, 1, (40, 3)), rng.normal(1.5, 1, (40, 3))]
    y = np.r_[np.zeros(40, int), np.ones(40, int)]
    seen = []

    def features(a):
        seen.append(len(a))
        return a

    scorer = TransferScorer(features=features, cross_fit=4, random_state=0).fit(X, y)
    assert seen == [80]  # the teacher's features of the training set, nothing else
    in_sample = TransferScorer(cross_fit=0).fit(X, y)
    assert scorer.train_scores_.shape == (80,)
    # out-of-fold scores are less confident than in-sample ones, which reward memory
    assert scorer.train_scores_.mean() <= in_sample.train_scores_.mean() + 1e-9
    assert scorer.score_samples(X[:5], y[:5]).shape == (5,)
    with pytest.raises(ValueError, match="need >= 4 examples of every class"):
        TransferScorer(cross_fit=4).fit(X[:41], y[:41])


def test_model_and_array_scorers():
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    assert ModelScorer(lambda x: proba).fit_score(np.zeros((3, 1)), [0, 1, 1]).tolist() == \
        [0.9, 0.8, 0.4]
    assert ArrayScorer([3.0, 1.0]).fit_score(np.zeros((2, 1)), [0, 1]).tolist() == [3.0, 1.0]
    with pytest.raises(ValueError, match="one value per training example"):
        ArrayScorer([1.0]).fit(np.zeros((2, 1)), [0, 1])


def test_the_papers_two_theorems_hold_by_monte_carlo():
    out = monte_carlo_gains(n=100_000, bins=5, seed=1)
    # 1. easier points (lower loss of the optimal hypothesis) move w further towards w*
    assert np.all(np.diff(out["gain_by_difficulty"]) < 0)
    # 2. at fixed difficulty, points with a higher current loss move it further
    assert np.all(np.diff(out["gain_by_loss"]) > 0)
