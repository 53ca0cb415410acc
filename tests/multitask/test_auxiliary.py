"""Auxiliary task selection: only labelled windows decide relevance, targets are
standardised on labelled + unlabelled, too few relevant features are padded loudly."""

import warnings

import numpy as np
import pytest

pytest.importorskip("tsfresh")

from transferkit.multitask.auxiliary import (  # noqa: E402
    FeatureBank,
    fc_parameters,
    feature_bank,
    select_auxiliary_tasks,
)


def _bank(rng, n_lab=60, n_unl=200, n_test=100):
    """Labelled, unlabelled and test rows. ``good`` follows the label on the labelled rows;
    ``leak`` follows the label on the TEST rows only (noise elsewhere)."""
    n = n_lab + n_unl + n_test
    y = rng.integers(0, 2, n).astype(float)
    vals = rng.normal(size=(n, 12))
    vals[:, 0] += 3 * y  # good everywhere
    vals[n_lab + n_unl:, 1] = 20 * y[n_lab + n_unl:] - 10  # leak: test rows only
    names = ["good", "leak"] + [f"noise{i}" for i in range(10)]
    lab = np.arange(n_lab)
    train = np.arange(n_lab + n_unl)
    return FeatureBank(vals, names), y, lab, train


def test_the_relevance_test_never_sees_a_feature_that_only_test_labels_explain():
    rng = np.random.default_rng(0)
    bank, y, lab, train = _bank(rng)
    tasks = select_auxiliary_tasks(bank.rows(lab), y[lab], bank.rows(train), k=1, seed=0)
    assert tasks.names == ["good"] and tasks.relevant == 1 and tasks.n_relevant_total == 1
    # with every label (the leak's rows included) the leak would have been found
    everything = np.arange(len(y))
    leaky = select_auxiliary_tasks(bank.rows(everything), y, bank, k=2, seed=0)
    assert "leak" in leaky.names


def test_targets_are_standardised_on_the_training_windows_and_the_choice_is_seeded():
    rng = np.random.default_rng(1)
    bank, y, lab, train = _bank(rng)
    with pytest.warns(UserWarning, match="padding 3"):
        tasks = select_auxiliary_tasks(bank.rows(lab), y[lab], bank.rows(train), k=4, seed=2)
    assert tasks.names[0] == "good" and tasks.relevant == 1 and tasks.k == 4
    t = tasks.targets(bank.rows(train))
    np.testing.assert_allclose(t.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(t.std(0), 1, atol=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        same = select_auxiliary_tasks(bank.rows(lab), y[lab], bank.rows(train), k=4, seed=2)
        other = [select_auxiliary_tasks(bank.rows(lab), y[lab], bank.rows(train), k=4,
                                        seed=s).names for s in range(3, 8)]
    assert same.names == tasks.names and any(o != tasks.names for o in other)


def test_selection_refuses_unusable_labels():
    rng = np.random.default_rng(2)
    bank, y, lab, train = _bank(rng)
    with pytest.raises(ValueError, match="one class"):
        select_auxiliary_tasks(bank.rows(lab), np.zeros(len(lab)), bank.rows(train), 1)
    with pytest.raises(ValueError, match="no missing label"):
        yy = y[lab].copy()
        yy[0] = np.nan
        select_auxiliary_tasks(bank.rows(lab), yy, bank.rows(train), 1)


def test_feature_bank_names_channels_and_imputes_missing_windows():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(6, 2, 64)).astype(np.float32)
    X[0, 1, 10:40] = np.nan
    X[1, 0] = np.nan  # a channel absent altogether
    bank = feature_bank(X, ("ecg", "spo2"), fc="minimal")
    assert bank.values.shape == (6, 2 * len(fc_parameters("minimal")))
    assert np.isfinite(bank.values).all()
    assert {n.split("__")[0] for n in bank.names} == {"ecg", "spo2"}
    test = feature_bank(X[:2], ("ecg", "spo2"), fc="minimal", impute_from=bank)
    assert test.names == bank.names
    with pytest.raises(ValueError, match="fc_parameters"):
        fc_parameters("everything")
