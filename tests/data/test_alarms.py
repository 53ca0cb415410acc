"""The ICU alarm simulator: labels match the injected events, the events look like what
they claim, missing data are NaN, and user arrays go through the same container."""

import numpy as np
import pytest

pytest.importorskip("neurokit2")

from transferkit.data.alarms import (  # noqa: E402
    ALARM_CHANNELS,
    FALSE_EVENTS,
    TRUE_EVENTS,
    Windows,
    simulate_alarms,
)


@pytest.fixture(scope="module")
def sim():
    return simulate_alarms(400, seed=3)


def _rate_bpm(sig, fs):
    """Dominant frequency of a pulse signal in beats per minute (30-240 bpm band)."""
    sig = np.nan_to_num(sig - np.nanmean(sig))
    spec = np.abs(np.fft.rfft(sig * np.hanning(len(sig))))
    f = np.fft.rfftfreq(len(sig), 1 / fs) * 60
    band = (f >= 30) & (f <= 240)
    return f[band][np.argmax(spec[band])]


def test_labels_match_the_injected_events_and_the_simulator_is_seeded(sim):
    assert sim.X.shape == (400, 4, 256) and sim.channels == ALARM_CHANNELS
    is_true = np.isin(sim.events, TRUE_EVENTS)
    assert np.isin(sim.events, TRUE_EVENTS + FALSE_EVENTS).all()
    np.testing.assert_array_equal(sim.y, is_true.astype(float))
    assert 0.25 < sim.y.mean() < 0.55
    again = simulate_alarms(400, seed=3)
    np.testing.assert_array_equal(np.nan_to_num(again.X, nan=7), np.nan_to_num(sim.X, nan=7))
    assert not np.array_equal(simulate_alarms(50, seed=4).events, sim.events[:50])


def test_events_look_like_their_physiology(sim):
    fs = sim.sampling_rate
    pleth = sim.X[:, 1]

    def rates(event):
        rows = [i for i in np.flatnonzero(sim.events == event) if not np.isnan(pleth[i]).any()]
        return np.array([_rate_bpm(pleth[i], fs) for i in rows])

    assert np.median(rates("tachycardia")) > 140
    assert np.median(rates("bradycardia")) < 50
    assert 50 < np.median(rates("powerline")) < 115  # a normal patient under an ECG artifact
    ecg = sim.X[:, 0]
    for event in ("asystole", "lead-off"):  # the ECG's last quarter is flat
        rows = [i for i in np.flatnonzero(sim.events == event) if not np.isnan(ecg[i, -64:]).any()]
        assert np.median([ecg[i, -64:].std() for i in rows]) < 0.1
    normal = [i for i in np.flatnonzero(sim.events == "powerline")
              if not np.isnan(ecg[i, -64:]).any()]
    assert np.median([ecg[i, -64:].std() for i in normal]) > 0.5
    # a false asystole (lead-off) keeps its pulse; a true one loses it
    lead = [i for i in np.flatnonzero(sim.events == "lead-off") if not np.isnan(pleth[i]).any()]
    asys = [i for i in np.flatnonzero(sim.events == "asystole") if not np.isnan(pleth[i]).any()]
    assert np.median([pleth[i, -64:].std() for i in lead]) > \
        5 * np.median([pleth[i, -64:].std() for i in asys])
    def burst(i):  # the largest 1-s spread of the ECG's sample-to-sample changes
        d = np.diff(ecg[i])
        return np.nanmax([np.std(d[j:j + 32]) for j in range(0, len(d) - 32, 8)])

    noisy = [burst(i) for i in np.flatnonzero(sim.events == "noise-burst")]
    clean = [burst(i) for i in np.flatnonzero(sim.events == "desaturation")]
    assert np.median(noisy) > 1.5 * np.median(clean)
    spo2 = sim.X[:, 3]
    desat = [i for i in np.flatnonzero(sim.events == "desaturation")
             if not np.isnan(spo2[i, -8:]).any()]
    assert np.median([spo2[i, -8:].mean() for i in desat]) < 88


def test_false_alarms_carry_artefact_energy_and_true_ones_respiratory_distress(sim):
    """What separates the classes beyond the events, as in bedside data."""
    fs = sim.sampling_rate
    ok = ~np.isnan(sim.X).any(axis=2).any(axis=1)
    true, false = ok & (sim.y == 1), ok & (sim.y == 0)

    def wander(i):  # low-frequency (0.15-1 Hz) energy of the pleth: movement
        sig = sim.X[i, 1] - sim.X[i, 1].mean()
        spec = np.abs(np.fft.rfft(sig)) ** 2
        f = np.fft.rfftfreq(len(sig), 1 / fs)
        return spec[(f > 0.15) & (f < 1.0)].sum() / spec.sum()

    assert np.median([wander(i) for i in np.flatnonzero(false)]) > \
        2 * np.median([wander(i) for i in np.flatnonzero(true)])
    # breathing: zero crossings of the respiration per minute, twice the breath rate
    def breaths(i):
        r = sim.X[i, 2] - sim.X[i, 2].mean()
        return (np.diff(np.sign(r)) != 0).sum() / 2 * 60 * fs / len(r)

    assert np.median([breaths(i) for i in np.flatnonzero(true)]) > \
        np.median([breaths(i) for i in np.flatnonzero(false)]) + 4


def test_two_seeds_share_no_source_record():
    """A test set simulated from another seed than the training windows shares no record."""
    import neurokit2 as nk

    from transferkit.data.alarms import _Bank

    a, b = _Bank(nk, 0, 64, 8.0), _Bank(nk, 1, 64, 8.0)
    assert not np.allclose(a._record("ecg", 80), b._record("ecg", 80))
    assert not np.allclose(a._record("pleth", 80), b._record("pleth", 80))


def test_missing_segments_are_nan_and_counted_as_indicators(sim):
    frac = sim.missing_fraction()
    assert frac.shape == (400, 4)
    assert 0.1 < (frac.max(axis=1) > 0).mean() < 0.4
    assert (frac == 1).any()  # a channel absent altogether somewhere
    assert np.isfinite(sim.filled()).all()


def test_user_arrays_with_missing_labels_and_bad_input():
    X = np.random.default_rng(0).normal(size=(6, 2, 10))
    X[0, 1, :3] = np.nan
    w = Windows.from_arrays(X, [1, 0, np.nan, 1, np.nan, 0], channels=["a", "b"],
                            sampling_rate=10)
    assert w.labelled.tolist() == [True, True, False, True, False, True]
    assert w.missing_fraction()[0, 1] == pytest.approx(0.3)
    assert len(w.subset([0, 2])) == 2 and np.isnan(w.without_labels().y).all()
    with pytest.raises(ValueError, match="n_windows, n_channels, n_steps"):
        Windows.from_arrays(X[0])
    with pytest.raises(ValueError, match="0, 1 or NaN"):
        Windows.from_arrays(X, [2, 0, 0, 0, 0, 0])
    with pytest.raises(ValueError, match="shape \\(6,\\)"):
        Windows.from_arrays(X, [1, 0])
    with pytest.raises(ValueError, match="infinite"):
        Windows.from_arrays(np.full((1, 1, 3), np.inf))
