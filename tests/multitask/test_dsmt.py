"""DSMT-Net: shapes of every variant, indicators reach the output, and the two-phase
schedule with burn-in and early stopping runs in the one loop."""

import numpy as np
import pytest
import torch

from transferkit.multitask.dsmt import ChannelScaler, DSMTNet, Highway, youden_threshold
from transferkit.train import seeded
from transferkit.workflows import fit_dsmt


@pytest.mark.parametrize("mode,k", [("blocks", 3), ("shared", 3), ("blocks", 0)])
def test_every_variant_gives_a_logit_and_k_auxiliary_outputs(mode, k):
    with seeded(0):
        net = DSMTNet(3, k, width=4, units=8, aux_mode=mode)
    logit, aux = net(torch.randn(5, 3, 64), torch.zeros(5, 3))
    assert logit.shape == (5,) and aux.shape == (5, k)


def test_missing_indicators_reach_the_main_output():
    with seeded(0):
        net = DSMTNet(2, 2, width=4, units=8).eval()
    x = torch.randn(4, 2, 64)
    a, _ = net(x, torch.zeros(4, 2))
    b, _ = net(x, torch.tensor([[1.0, 0.0]] * 4))
    assert not torch.allclose(a, b)


def test_channel_groups_must_cover_every_channel_once():
    DSMTNet(3, 1, groups=[[0, 1], [2]], width=4, units=8)
    with pytest.raises(ValueError, match="cover each"):
        DSMTNet(3, 1, groups=[[0, 1]], width=4, units=8)


def test_scaler_turns_missing_samples_into_zeros_after_scaling():
    X = np.random.default_rng(0).normal(3, 2, size=(10, 2, 20)).astype(np.float32)
    X[0, 0, :5] = np.nan
    X[1, 1] = np.nan
    z = ChannelScaler().fit(X).transform(X)
    assert np.isfinite(z).all() and (z[0, 0, :5] == 0).all()
    assert abs(float(np.nanmean(z[2:]))) < 0.3


def _toy(n, rng):
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 2, 32)).astype(np.float32)
    x[:, 0] += y[:, None] * 1.5
    return torch.from_numpy(x), torch.zeros(n, 2), torch.from_numpy(y).float()


def test_schedule_burn_in_then_alternating_epochs_with_early_stopping():
    rng = np.random.default_rng(0)
    lab, val = _toy(12, rng), _toy(10, rng)
    pool_x = torch.randn(40, 2, 32)
    aux = (pool_x, torch.zeros(40, 2), pool_x.mean(2))  # two auxiliary targets
    with seeded(0):
        net = DSMTNet(2, 2, width=4, units=8)
    res = fit_dsmt(net, lab, val, aux, epochs=6, burn_in=2, patience=2, batch_size=10,
                   lr=1e-3, seed=0)
    # an epoch is 12 steps (the labelled windows); burn-in 2 aux epochs, then aux/main in turn
    assert 1 <= res.epochs <= 6 and 1 <= res.best_epoch <= res.epochs
    assert res.epochs == 6 or res.epochs - res.best_epoch == 2
    assert len(res.val_loss) == res.epochs and 0.0 <= res.threshold <= 1.0


def test_supervised_network_trains_on_the_main_task_alone():
    rng = np.random.default_rng(1)
    lab, val = _toy(30, rng), _toy(30, rng)
    with seeded(0):
        net = DSMTNet(2, 0, width=4, units=8)
    res = fit_dsmt(net, lab, val, None, epochs=15, patience=15, batch_size=10, lr=3e-3)
    assert res.epochs == 15
    assert min(res.val_loss) < res.val_loss[0]


def test_youden_threshold_separates_perfectly_separated_scores():
    y = np.array([0, 0, 1, 1])
    t = youden_threshold(y, np.array([0.1, 0.2, 0.7, 0.9]))
    assert 0.2 < t <= 0.7
    assert youden_threshold(np.zeros(3), np.ones(3)) == 0.5


def test_train_dsmt_on_a_users_windows_with_missing_labels_and_values():
    pytest.importorskip("tsfresh")
    from transferkit.data import Windows
    from transferkit.workflows import train_dsmt

    rng = np.random.default_rng(3)
    X, _, y = _toy(60, rng)
    X = X.numpy()
    X[0, 1, :10] = np.nan  # missing samples
    labels = y.numpy().astype(float)
    labels[20:] = np.nan  # unlabelled windows
    train = Windows.from_arrays(X[:50], labels[:50], channels=("a", "b"))
    val = Windows.from_arrays(X[50:], y.numpy()[50:], channels=("a", "b"))
    for k in (0, 2):
        model = train_dsmt(train, val, k, fc="minimal", width=4, units=8, epochs=2,
                           burn_in=1, patience=5, batch_size=16)
        p = model.predict_proba(val)
        assert p.shape == (10,) and np.isfinite(p).all()
        assert set(model.predict(val)) <= {0, 1}
        assert (model.tasks is None) == (k == 0)
        # an epoch is 20 steps (the labelled windows) of either phase, whatever K
        assert model.result.steps == (2 * 20 if k == 0 else (1 + 2 * 2 - 1) * 20)
        pooled = train_dsmt(train, val, k, fc="minimal", width=4, units=8, epochs=2,
                            burn_in=1, patience=5, batch_size=16, epoch="pool")
        # ... or ceil(50 train windows / 16) = 4 steps with epoch="pool"
        assert pooled.result.steps == (2 * 4 if k == 0 else (1 + 2 * 2 - 1) * 4)
    with pytest.raises(ValueError, match="both classes"):
        train_dsmt(Windows.from_arrays(X[:10], np.zeros(10)), val, 0)
    with pytest.raises(ValueError, match="channels"):
        train_dsmt(train, Windows.from_arrays(X[50:], y.numpy()[50:]), 0)


def test_the_authors_layers_batch_norm_in_blocks_and_head_and_a_highway_for_k0():
    blocks = DSMTNet(2, 3, width=4, units=8)
    assert blocks.block_norm.num_features == 3 * 8
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in blocks.head)
    plain = DSMTNet(2, 3, width=4, units=8, batch_norm=False)
    assert plain.block_norm is None
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in plain.head)
    supervised = DSMTNet(2, 0, width=4, units=8)  # perception -> highway -> logit
    assert isinstance(supervised.head, Highway) and supervised.main_out.in_features == 2 * 8 + 2
    naive = DSMTNet(2, 3, width=4, units=8, aux_mode="shared")  # Dense(units x groups) -> ReLU
    assert naive.head[0].out_features == 2 * 8 and naive.shared_aux.out_features == 3


def test_block_norm_normalises_each_block_separately():
    with seeded(0):
        net = DSMTNet(2, 2, width=4, units=8)
    with torch.no_grad():  # block 1 sees inputs 100x larger than block 0
        net.block_w[1] *= 100
    seen = {}
    net.block_highway.register_forward_pre_hook(lambda m, args: seen.update(h=args[0]))
    with torch.no_grad():
        net(torch.randn(16, 2, 64), torch.zeros(16, 2))
    h = seen["h"]  # (K, n, units) after batch norm and ReLU
    assert abs(float(h[0].mean()) - float(h[1].mean())) < 0.3


def test_batch_norm_needs_two_windows_a_batch():
    pytest.importorskip("tsfresh")
    from transferkit.data import Windows
    from transferkit.workflows import train_dsmt

    X, _, y = _toy(30, np.random.default_rng(0))
    w = Windows.from_arrays(X.numpy(), y.numpy(), channels=("a", "b"))
    with pytest.raises(ValueError, match="batch_size must be >= 2 with batch_norm"):
        train_dsmt(w.subset(np.arange(20)), w.subset(np.arange(20, 30)), 0, batch_size=1)
    model = train_dsmt(w.subset(np.arange(20)), w.subset(np.arange(20, 30)), 0, width=4,
                       units=8, epochs=1, batch_size=1, batch_norm=False)
    assert model.result.steps == 20  # one window a step, as the authors' generators
    from transferkit.multitask import feature_bank

    bank = feature_bank(w.X[:20], w.channels, "minimal")
    with pytest.raises(ValueError, match="pass the fc that made bank, or validation_bank"):
        train_dsmt(w.subset(np.arange(20)), w.subset(np.arange(20, 30)), 1, bank=bank)
    with pytest.raises(ValueError, match="epoch must be"):
        train_dsmt(w.subset(np.arange(20)), w.subset(np.arange(20, 30)), 0, epoch="all")


def test_auxiliary_phase_stops_on_its_own_validation_loss():
    rng = np.random.default_rng(0)
    lab, val = _toy(12, rng), _toy(10, rng)
    pool_x = torch.randn(40, 2, 32)
    aux = (pool_x, torch.zeros(40, 2), torch.randn(40, 2))  # noise: nothing to learn
    with seeded(0):
        net = DSMTNet(2, 2, width=4, units=8)
    res = fit_dsmt(net, lab, val, aux, epochs=12, burn_in=1, patience=100, batch_size=4,
                   lr=1e-2, seed=0, steps_per_epoch=3, aux_validation=torch.randn(10, 2),
                   aux_patience=2)
    # the auxiliary phase ended early; the main task ran all its epochs regardless
    assert res.epochs == 12 and res.aux_epochs < 1 + 12 - 1
    assert res.steps == 3 * (res.aux_epochs + 12)
