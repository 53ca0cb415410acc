import numpy as np
import pytest
import torch

from transferkit.adaptation import (
    CORAL,
    DANN,
    MSTN,
    AdaptationModel,
    DEVCriterion,
    adaptation_step,
    annealed_lr_scheduler,
    deep_embedded_validation_risk,
    domain_importance_weights,
    importance_weighted_risk,
    source_risk,
)
from transferkit.nets import MLP
from transferkit.train import BestCheckpoint, Phase, Stream, Trainer, fit


def test_dev_risk_matches_hand_computation():
    losses = np.array([1.0, 2.0, 0.5, 3.0])
    w = np.array([0.5, 1.5, 1.0, 2.0])
    weighted = w * losses  # 0.5, 3, 0.5, 6 -> mean 2.5
    cov = np.sum((weighted - weighted.mean()) * (w - w.mean())) / 3
    eta = -cov / np.var(w, ddof=1)
    expected = weighted.mean() + eta * w.mean() - eta
    assert deep_embedded_validation_risk(losses, w) == pytest.approx(expected)
    assert importance_weighted_risk(losses, w) == pytest.approx(2.5)
    assert source_risk(losses) == pytest.approx(1.625)
    with pytest.raises(ValueError, match="weights have shape"):
        importance_weighted_risk(losses, w[:3])


def test_importance_weights_follow_the_density_ratio():
    rng = np.random.default_rng(0)
    s, t = rng.normal(0, 1, (2000, 1)), rng.normal(1, 1, (2000, 1))
    pts = np.array([[-1.0], [0.5], [2.0]])
    w = domain_importance_weights(s, t, pts, reg=1e-3)
    # true ratio N(1,1)/N(0,1) = exp(x - 1/2)
    assert np.allclose(w, np.exp(pts[:, 0] - 0.5), rtol=0.15)
    with pytest.raises(ValueError, match="feature widths differ"):
        domain_importance_weights(s, np.zeros((5, 2)), pts)


def test_iwcv_is_unbiased_for_the_target_risk_under_covariate_shift():
    rng = np.random.default_rng(1)
    xs = rng.normal(0, 1, (4000, 1))
    xt = rng.normal(0.7, 1, (4000, 1))
    loss = (xs[:, 0] > 0.5).astype(float)  # a classifier wrong exactly when x > 0.5
    target_risk = float((xt[:, 0] > 0.5).mean())
    w = domain_importance_weights(xs, xt, xs, reg=1e-3)
    assert importance_weighted_risk(loss, w) == pytest.approx(target_risk, abs=0.03)
    assert deep_embedded_validation_risk(loss, w) == pytest.approx(target_risk, abs=0.03)
    assert abs(source_risk(loss) - target_risk) > 0.1


def test_best_checkpoint_restores_the_selected_state():
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 2)
    x, y = torch.randn(32, 2), torch.randint(0, 2, (32,))
    seen = {}

    def crit(m):  # prefers the state after step 4
        step = len(seen) * 2 + 2
        seen[step] = {k: v.clone() for k, v in m.state_dict().items()}
        return 0.0 if step == 4 else 1.0

    from transferkit.train import classification_step

    sel = BestCheckpoint(crit, every=2)
    fit(
        model,
        classification_step(),
        {"train": Stream(x, y, batch_size=8)},
        torch.optim.SGD(model.parameters(), lr=0.5),
        8,
        callbacks=[sel],
        seed=0,
    )
    assert sel.best_step == 4
    for k, v in model.state_dict().items():
        assert torch.equal(v, seen[4][k])
    with pytest.raises(ValueError, match="every"):
        BestCheckpoint(crit, every=0)


def _data():
    g = torch.Generator().manual_seed(0)
    xs, ys = torch.rand(64, 1, 4, 4, generator=g), torch.arange(64) % 3
    xt = torch.rand(48, 1, 4, 4, generator=g) * 0.5 + 0.3
    return xs, ys, xt


@pytest.mark.parametrize(
    "objective", [None, CORAL(), DANN(8, hidden=(8,)), MSTN(8, 3, hidden=(8,))], ids=str
)
def test_adaptation_step_trains_and_resumes_identically(tmp_path, objective):
    xs, ys, xt = _data()

    from transferkit.train import Callback

    class StopAt(Callback):  # simulates a run killed after `at` steps
        def __init__(self, at):
            self.at = at

        def on_step_end(self, trainer, ctx):
            if ctx.step + 1 == self.at:
                trainer.should_stop = True

    def trainer(ckpt, steps, stop=None):
        torch.manual_seed(1)
        import copy

        model = AdaptationModel(MLP((1, 4, 4), 3, hidden=(8,)), copy.deepcopy(objective))
        with torch.no_grad():
            for i, p in enumerate(model.parameters()):
                vals = torch.sin(torch.arange(p.numel(), dtype=p.dtype) + i)
                p.copy_(vals.reshape(p.shape) * 0.3)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        streams = {
            "source": Stream(xs, ys, batch_size=16, seed=0),
            "target": Stream(xt, batch_size=16, seed=1),
        }
        phase = Phase(adaptation_step(), opt, streams, scheduler=annealed_lr_scheduler(opt, 20))
        cbs = [StopAt(stop)] if stop else []
        return Trainer(
            model,
            phase,
            max_steps=steps,
            checkpoint=ckpt,
            seed=0,
            log_losses_every=0,
            callbacks=cbs,
        )

    full = trainer(tmp_path / "a.pt", 20)
    full.fit()
    half = trainer(tmp_path / "b.pt", 20, stop=10)
    half.fit()
    assert half.step == 10
    resumed = trainer(tmp_path / "b.pt", 20)
    resumed.fit()
    for (k, a), b in zip(
        full.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), k
    if isinstance(objective, MSTN):
        assert float(full.model.objective.source_centroids.abs().sum()) > 0


def test_adaptation_step_validates():
    with pytest.raises(ValueError, match="weight"):
        adaptation_step(weight=-1)
    xs, ys, xt = _data()
    with pytest.raises(TypeError, match="AdaptationModel"):
        fit(
            MLP((1, 4, 4), 3, hidden=(8,)),
            adaptation_step(),
            {"source": Stream(xs, ys, batch_size=8), "target": Stream(xt, batch_size=8)},
            torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1),
            1,
        )
    with pytest.raises(TypeError, match="features"):
        AdaptationModel(torch.nn.Linear(2, 2))


def test_dev_criterion_uses_no_target_labels():
    xs, ys, xt = _data()
    crit = DEVCriterion(xs[:32], xt, xs[32:], ys[32:])
    model = MLP((1, 4, 4), 3, hidden=(8,))
    v = crit(model)
    assert np.isfinite(v)
    assert crit(model) == v  # deterministic
    with pytest.raises(ValueError, match="kind"):
        DEVCriterion(xs, xt, xs, ys, kind="oracle")


def test_the_head_sees_target_rows_only_when_the_objective_reads_their_logits():
    """DANN, MMD and CORAL never use the target logits (issue 35: DANN spent time on them);
    MSTN's pseudo-labels do."""
    from transferkit.adaptation import AdaptationModel, adaptation_step, create_adaptation
    from transferkit.nets import MLP
    from transferkit.train import Stream, fit

    g = torch.Generator().manual_seed(0)
    xs, ys = torch.rand(16, 1, 4, 4, generator=g), torch.arange(16) % 2
    xt = torch.rand(16, 1, 4, 4, generator=g)
    for name, rows in (("dann", 4), ("mmd", 4), ("mstn", 8)):
        net = MLP((1, 4, 4), 2, hidden=(8,))
        seen: list[int] = []
        net.head.register_forward_hook(lambda m, args, out, seen=seen: seen.append(len(out)))
        model = AdaptationModel(net, create_adaptation(name, in_features=8, n_classes=2))
        streams = {"source": Stream(xs, ys, batch_size=4, seed=0),
                   "target": Stream(xt, batch_size=4, seed=1)}
        fit(model, adaptation_step(), streams, torch.optim.SGD(model.parameters(), lr=0.01),
            max_steps=2, seed=0, progress=False)
        assert seen == [rows, rows], (name, seen)
