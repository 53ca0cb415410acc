"""Shift simulators and correction (posterior reweighting, importance weights in the loop)."""

import numpy as np
import pytest
import torch

from transferkit.data import (
    dirichlet_prior,
    knock_out_prior,
    load_digits,
    sample_with_prior,
    shift_domain,
    tweak_one_prior,
)
from transferkit.labelshift import importance_weights, reweight_posteriors


def test_priors_are_distributions_and_seeded():
    for prior in (tweak_one_prior(10, 0.5, seed=3), dirichlet_prior(10, 0.1, seed=3),
                  knock_out_prior(np.full(10, 0.1), 2, 0.8)):
        assert prior.shape == (10,) and np.all(prior >= 0) and np.isclose(prior.sum(), 1)
    np.testing.assert_array_equal(dirichlet_prior(10, 0.1, seed=5), dirichlet_prior(10, 0.1, 5))
    assert not np.array_equal(dirichlet_prior(10, 0.1, seed=5), dirichlet_prior(10, 0.1, 6))
    assert tweak_one_prior(4, 0.5, cls=1)[1] == 0.5
    assert knock_out_prior([0.5, 0.5], 0, 1.0).tolist() == [0.0, 1.0]
    # small alpha concentrates the mass
    top = np.mean([np.sort(dirichlet_prior(10, 0.1, s))[-2:].sum() for s in range(50)])
    assert top > 0.8


def test_sample_with_prior_follows_prior():
    y = np.repeat(np.arange(4), 50)
    q = np.array([0.1, 0.2, 0.3, 0.4])
    idx = sample_with_prior(y, q, 20_000, seed=0)
    freq = np.bincount(y[idx], minlength=4) / len(idx)
    np.testing.assert_allclose(freq, q, atol=0.015)
    np.testing.assert_array_equal(idx, sample_with_prior(y, q, 20_000, seed=0))
    with pytest.raises(ValueError, match="without replacement"):
        sample_with_prior(y, q, 1000, seed=0, replace=False)
    with pytest.raises(ValueError, match="no rows in the pool"):
        sample_with_prior(np.zeros(5, dtype=int), [0.5, 0.5], 10)
    d = shift_domain(load_digits(), tweak_one_prior(10, 1.0, cls=7), 30, seed=1)
    assert d.classes == [7] and len(d) == 30


def test_reweight_posteriors_matches_formula_and_identity():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(3), 50)
    np.testing.assert_allclose(reweight_posteriors(p, np.ones(3)), p, atol=1e-12)
    w = np.array([2.0, 0.5, 0.0])
    out = reweight_posteriors(p, w)
    ref = p * w / (p * w).sum(1, keepdims=True)
    np.testing.assert_allclose(out, ref, atol=1e-12)
    with pytest.raises(ValueError, match="3 classes"):
        reweight_posteriors(p, np.ones(4))
    with pytest.raises(ValueError, match="non-negative"):
        reweight_posteriors(p, np.array([1.0, -1.0, 1.0]))


def test_importance_weights_feed_the_training_loop():
    from transferkit.train import Stream, classification_step, fit

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200, 2, generator=gen)
    y = (x[:, 0] > 0).long()
    w = importance_weights(y, [0.0, 1.0])  # class 0 ignored entirely
    assert w.dtype == torch.float32 and w.shape == (200,)
    assert np.allclose(importance_weights(y.numpy(), [0.0, 1.0]), w.numpy())

    def train(*tensors):
        model = torch.nn.Linear(2, 2)
        torch.nn.init.zeros_(model.weight)
        torch.nn.init.zeros_(model.bias)
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        stream = Stream(*tensors, batch_size=50, seed=0)
        fit(model, classification_step(), {"train": stream}, opt, max_steps=40, seed=0,
            log_losses_every=0)
        return (model(x).argmax(1) == 1).float().mean().item()

    # down-weighting class 0 makes the model predict class 1 more often
    assert train(x, y, w) > train(x, y) + 0.1
