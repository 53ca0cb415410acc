"""Multichannel bedside-monitor windows and their alarms: a seeded ICU alarm simulator
and the container that also takes a user's own arrays.

A bedside monitor raises an alarm when a rule fires on its signals (heart rate above a
limit, no beat for seconds, saturation below a limit). Many alarms are false: the rule
fired on an artifact, not on the patient. The task (Schwab et al., ICML 2018, whose ICU
data are not public) is to tell a true alarm (label 1) from a false one (label 0) from
the window of signals around it.

:func:`simulate_alarms` makes such windows with neurokit2's simulators and distortion
function (the optional extra ``physio``). Channels, 8 s at 32 Hz by default:

- ``ecg``: electrocardiogram (lead II-like, ``neurokit2.ecg_simulate``);
- ``pleth``: photoplethysmogram, the pulse wave of the SpO2 finger probe
  (``neurokit2.ppg_simulate``); it stands in for arterial pressure;
- ``resp``: respiration (impedance-like, ``neurokit2.rsp_simulate``);
- ``spo2``: the oxygen-saturation trend in percent, quantised to whole percent.

True alarms (label 1), a real event that both the ECG and the pulse agree on:

- ``tachycardia``: heart rate 150-190 bpm in ECG and pulse (extreme tachycardia);
- ``bradycardia``: 30-42 bpm in both (extreme bradycardia);
- ``asystole``: from a random second on no beat in the ECG and no pulse in the pleth;
- ``desaturation``: SpO2 falls steadily to 75-85% while pulse and ECG stay normal;
- ``hypotension``: the pulse amplitude collapses to 20-40% with a compensatory rise in
  heart rate (pleth standing in for arterial pressure).

False alarms (label 0), a normal patient (55-110 bpm) and an artifact:

- ``motion``: movement artifacts on the ECG and pleth (``neurokit2.signal_distort``
  artifacts), which a rate rule reads as tachycardia;
- ``lead-off``: an ECG lead comes off: the ECG goes flat while the pulse goes on
  (a false asystole);
- ``noise-burst``: 1-3 s of noise at 5-10 Hz on the ECG (muscle tremor, electrosurgery;
  neurokit2 silently skips noise components a short segment cannot hold, so the bands
  stay below the window's Nyquist rate);
- ``powerline``: strong 50 Hz mains interference on the ECG (aliased at 32 Hz, as an
  unfiltered sampler would record it);
- ``probe-off``: the finger probe slips: the pleth flattens to noise and the SpO2 reading
  drops abruptly (a false desaturation), while the ECG is normal.

What separates true from false alarms beyond the event itself, as in bedside data (most
false alarms are set off by patient movement or poor contact; a true event comes with
the patient's distress):

- **artefact energy**: a false alarm carries, with probability 0.8, movement
  contamination on the ECG and pleth (baseline wander at 0.2-1 Hz and broadband noise,
  0.3-0.8 of the signal's sd) besides its own artifact; a true alarm with probability
  0.15 (patients in distress move too);
- **respiratory distress**: a true alarm comes, with probability 0.7, with fast and
  irregular breathing (22-35 breaths a minute, amplitude varying by up to half) instead
  of the resting 10-22.

Missing data: with probability ``missing_rate`` a window has one channel with a gap of
20-60% of its length, and with probability ``missing_rate / 4`` one channel absent
altogether (not connected); missing samples are NaN.

Generation is fast: the ECG and pleth are simulated once per heart rate on a 2-bpm grid
(60 s at 64 Hz) and windows are cut from them at random offsets, then downsampled. The
windows of one call therefore share source records (as the alarms of one cohort of
patients would); calls with different seeds share none: cut a test set from another seed
than the training windows, so that no source record is on both sides.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["ALARM_CHANNELS", "FALSE_EVENTS", "TRUE_EVENTS", "Windows", "simulate_alarms"]

ALARM_CHANNELS = ("ecg", "pleth", "resp", "spo2")
TRUE_EVENTS = ("tachycardia", "bradycardia", "asystole", "desaturation", "hypotension")
FALSE_EVENTS = ("motion", "lead-off", "noise-burst", "powerline", "probe-off")


@dataclass
class Windows:
    """Windows of multichannel time series with binary labels that may be missing.

    Parameters
    ----------
    X : array (n_windows, n_channels, n_steps)
        NaN marks a missing sample.
    y : array (n_windows,)
        1 (positive, e.g. a true alarm), 0, or NaN for an unlabelled window.
    channels : tuple of str
    sampling_rate : float
        Samples per second.
    events : array of str, optional
        What each window holds (the simulator's ground truth), for reports only.

    Examples
    --------
    Your own recordings: windows of equal length, channels named, NaN where a sensor dropped
    out, NaN labels for unlabelled windows:

    >>> X = np.random.default_rng(0).normal(size=(6, 2, 32))
    >>> X[1, 0, 4:9] = np.nan
    >>> w = Windows.from_arrays(X, [1, 0, np.nan, 1, np.nan, 0], channels=("ecg", "abp"))
    >>> len(w), int(w.labelled.sum()), [round(float(v), 3) for v in w.missing_fraction()[1]]
    (6, 4, [0.156, 0.0])
    """

    X: NDArray[np.float32]
    y: NDArray[np.float64]
    channels: tuple[str, ...]
    sampling_rate: float = 1.0
    events: NDArray[np.str_] | None = None

    @classmethod
    def from_arrays(cls, X: ArrayLike, y: ArrayLike | None = None,
                    channels: Sequence[str] | None = None, sampling_rate: float = 1.0,
                    events: Sequence[str] | None = None) -> Windows:
        """A user's arrays: ``X`` (n_windows, n_channels, n_steps) with NaN for missing
        samples, ``y`` 0/1 with NaN (or None) for unlabelled windows."""
        x = np.asarray(X, dtype=np.float32)
        if x.ndim != 3:
            raise ValueError(f"X must be (n_windows, n_channels, n_steps); got shape {x.shape}")
        if np.isinf(x).any():
            raise ValueError("X contains infinite values (use NaN for missing samples)")
        n, c, _ = x.shape
        lab = np.full(n, np.nan) if y is None else np.asarray(y, dtype=np.float64)
        if lab.shape != (n,):
            raise ValueError(f"y must have shape ({n},) to match X; got {lab.shape}")
        known = lab[~np.isnan(lab)]
        if not np.isin(known, (0.0, 1.0)).all():
            bad = sorted(set(known[~np.isin(known, (0.0, 1.0))].tolist()))[:5]
            raise ValueError(f"labels must be 0, 1 or NaN (unlabelled); got {bad}")
        names = tuple(channels) if channels is not None else tuple(f"ch{i}" for i in range(c))
        if len(names) != c:
            raise ValueError(f"{len(names)} channel names for {c} channels")
        if not sampling_rate > 0:
            raise ValueError(f"sampling_rate must be > 0; got {sampling_rate}")
        ev = None if events is None else np.asarray(events, dtype=str)
        if ev is not None and ev.shape != (n,):
            raise ValueError(f"events must have shape ({n},); got {ev.shape}")
        return cls(x, lab, names, float(sampling_rate), ev)

    def __len__(self) -> int:
        return len(self.X)

    @property
    def labelled(self) -> NDArray[np.bool_]:
        return ~np.isnan(self.y)

    def subset(self, index: ArrayLike) -> Windows:
        idx = np.asarray(index)
        return Windows(self.X[idx], self.y[idx], self.channels, self.sampling_rate,
                       None if self.events is None else self.events[idx])

    def without_labels(self) -> Windows:
        """The same windows with every label hidden (unlabelled data)."""
        return Windows(self.X, np.full(len(self), np.nan), self.channels, self.sampling_rate,
                       self.events)

    def with_labels_of(self, keep: ArrayLike) -> Windows:
        """The same windows with only the labels at ``keep`` (indices or a boolean mask)
        kept and every other one hidden (NaN): a semi-supervised training set, as
        :func:`~transferkit.multitask.train_dsmt` takes it.

        Examples
        --------
        >>> w = Windows.from_arrays(np.zeros((4, 1, 8)), [0, 1, 1, 0], channels=("ecg",))
        >>> w.with_labels_of([1, 2]).labelled.tolist()
        [False, True, True, False]
        """
        mask = np.zeros(len(self), dtype=bool)
        mask[np.asarray(keep)] = True
        y = self.y.copy()
        y[~mask] = np.nan
        return Windows(self.X, y, self.channels, self.sampling_rate, self.events)

    def missing_fraction(self) -> NDArray[np.float32]:
        """Per window and channel, the fraction of missing samples, shape (n, channels):
        the missing-value indicators a model sees."""
        return np.isnan(self.X).mean(axis=2).astype(np.float32)

    def filled(self) -> NDArray[np.float32]:
        """``X`` with missing samples replaced by 0 (after the model's normalisation the
        indicators say what was missing)."""
        return np.nan_to_num(self.X, nan=0.0)


def _require_neurokit() -> Any:
    try:
        import neurokit2
    except ImportError:
        raise ImportError("the alarm simulator needs neurokit2: pip install "
                          "'transferkit[physio]'") from None
    return neurokit2


class _Bank:
    """ECG and pleth simulated once per heart rate (2-bpm grid), cut into windows."""

    def __init__(self, nk: Any, seed: int, rate: int, seconds: float) -> None:
        self.nk, self.seed, self.rate, self.seconds = nk, seed, rate, seconds
        self.cache: dict[tuple[str, int], NDArray[np.float64]] = {}

    def _record(self, kind: str, hr: int) -> NDArray[np.float64]:
        key = (kind, hr)
        if key not in self.cache:
            # neurokit2 prints notes on implausible modulations at extreme rates: silence
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                rs = self.seed * 1000 + hr + (0 if kind == "ecg" else 500)
                if kind == "ecg":
                    sig = self.nk.ecg_simulate(duration=60, sampling_rate=self.rate,
                                               heart_rate=hr, method="simple", random_state=rs)
                else:
                    sig = self.nk.ppg_simulate(duration=60, sampling_rate=self.rate,
                                               heart_rate=hr, random_state=rs)
            sig = np.asarray(sig, dtype=np.float64)
            self.cache[key] = (sig - sig.mean()) / (sig.std() + 1e-12)
        return self.cache[key]

    def cut(self, kind: str, hr: float, rng: np.random.Generator) -> NDArray[np.float64]:
        rec = self._record(kind, int(2 * round(hr / 2)))
        n = int(self.seconds * self.rate)
        start = int(rng.integers(0, len(rec) - n))
        return rec[start:start + n].copy()


def simulate_alarms(
    n_windows: int,
    seed: int = 0,
    true_fraction: float = 0.4,
    seconds: float = 8.0,
    sampling_rate: int = 32,
    missing_rate: float = 0.2,
) -> Windows:
    """Seeded bedside-monitor alarm windows (see the module docstring for every label).

    Returns a :class:`Windows` with every label known (hide some with
    :meth:`Windows.without_labels` or by index) and the event of each window in
    ``events``.

    Examples
    --------
    >>> w = simulate_alarms(20, seed=0)            # needs the extra ``timeseries`` (neurokit2)
    >>> w.X.shape[:2], w.channels[:2], set(np.unique(w.y)) <= {0.0, 1.0}
    ((20, 4), ('ecg', 'pleth'), True)
    """
    nk = _require_neurokit()
    n = int(n_windows)
    if n < 1:
        raise ValueError(f"n_windows must be >= 1; got {n_windows}")
    if not 0 < true_fraction < 1:
        raise ValueError(f"true_fraction must be in (0, 1); got {true_fraction}")
    if not 0 <= missing_rate <= 1:
        raise ValueError(f"missing_rate must be in [0, 1]; got {missing_rate}")
    if sampling_rate < 8 or seconds < 2:
        raise ValueError(f"need sampling_rate >= 8 and seconds >= 2; got {sampling_rate}, "
                         f"{seconds}")
    rng = np.random.default_rng([seed, 2018, 5])
    fine = 2 * int(sampling_rate)  # simulated at twice the rate, then averaged down
    bank = _Bank(nk, seed, fine, seconds)
    steps = int(seconds * sampling_rate)
    t = np.arange(int(seconds * fine)) / fine
    X = np.empty((n, 4, steps), dtype=np.float32)
    y = (rng.random(n) < true_fraction).astype(np.float64)
    events = np.where(y == 1, rng.choice(TRUE_EVENTS, n), rng.choice(FALSE_EVENTS, n))
    for i in range(n):
        X[i] = _window(str(events[i]), rng, bank, t, nk, fine).reshape(4, steps, 2).mean(2)
        _drop_segments(X[i], rng, missing_rate)
    return Windows(X, y, ALARM_CHANNELS, float(sampling_rate), events.astype(str))


def _window(event: str, rng: np.random.Generator, bank: _Bank, t: NDArray[np.float64],
            nk: Any, rate: int) -> NDArray[np.float64]:
    n = len(t)
    hr = float(rng.uniform(55, 110))
    if event == "tachycardia":
        hr = float(rng.uniform(150, 190))
    elif event == "bradycardia":
        hr = float(rng.uniform(30, 42))
    elif event == "hypotension":
        hr = float(rng.uniform(95, 125))
    ecg = bank.cut("ecg", hr, rng) * rng.uniform(0.7, 1.3)
    pleth = bank.cut("pleth", hr, rng) * rng.uniform(0.7, 1.3)
    true_alarm = event in TRUE_EVENTS
    distress = true_alarm and rng.random() < 0.7
    rr = (rng.uniform(22, 35) if distress else rng.uniform(10, 22)) / 60
    depth = 1 + (rng.uniform(0.2, 0.5) * np.sin(2 * np.pi * rng.uniform(0.1, 0.3) * t
                                                + rng.uniform(0, 2 * np.pi)) if distress else 0)
    resp = depth * np.sin(2 * np.pi * rr * t + rng.uniform(0, 2 * np.pi)) \
        + 0.1 * rng.normal(size=n)
    base_spo2 = rng.uniform(94, 99)
    spo2 = np.full(n, base_spo2)
    onset = int(rng.uniform(0.15, 0.5) * n)
    # patient movement, poor contact (a lead or probe that comes off below records none)
    if rng.random() < (0.15 if true_alarm else 0.8):
        for sig in (ecg, pleth):
            level = rng.uniform(0.3, 0.8)
            wander = np.sin(2 * np.pi * rng.uniform(0.2, 1.0) * t + rng.uniform(0, 2 * np.pi))
            sig += level * (wander + rng.normal(size=n))

    if event == "asystole":
        ecg[onset:] = 0.03 * rng.normal(size=n - onset)
        pleth[onset:] = pleth[onset] + 0.03 * rng.normal(size=n - onset)
    elif event == "desaturation":
        spo2 = base_spo2 + (rng.uniform(75, 85) - base_spo2) * np.clip(
            (np.arange(n) - onset) / (n - onset), 0, 1)
    elif event == "hypotension":
        pleth[onset:] *= rng.uniform(0.2, 0.4)
    elif event == "motion":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for sig in (ecg, pleth):
                sig[:] = nk.signal_distort(sig, sampling_rate=rate,
                                           artifacts_amplitude=rng.uniform(1.5, 3.0),
                                           artifacts_frequency=rng.uniform(2, 6),
                                           artifacts_number=int(rng.integers(2, 6)),
                                           random_state=int(rng.integers(2**31)), silent=True)
    elif event == "lead-off":
        ecg[onset:] = 0.0
    elif event == "noise-burst":
        length = int(rng.uniform(1, 3) * rate)
        a = int(rng.integers(0, n - length))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ecg[a:a + length] = nk.signal_distort(
                ecg[a:a + length], sampling_rate=rate, noise_amplitude=rng.uniform(2.0, 4.0),
                noise_frequency=[5, 10], random_state=int(rng.integers(2**31)), silent=True)
    elif event == "powerline":
        ecg += rng.uniform(0.8, 1.5) * np.sin(2 * np.pi * 50 * t + rng.uniform(0, 2 * np.pi))
    elif event == "probe-off":
        pleth[onset:] = 0.3 * rng.normal(size=n - onset)
        spo2[onset:] = rng.uniform(50, 80)

    ecg += 0.05 * rng.normal(size=n)
    pleth += 0.05 * rng.normal(size=n)
    spo2 = np.round(spo2 + 0.3 * rng.normal(size=n))
    return np.stack([ecg, pleth, resp, spo2])


def _drop_segments(x: NDArray[np.float32], rng: np.random.Generator, rate: float) -> None:
    c, n = x.shape
    if rng.random() < rate:
        ch = int(rng.integers(c))
        length = int(rng.uniform(0.2, 0.6) * n)
        a = int(rng.integers(0, n - length + 1))
        x[ch, a:a + length] = np.nan
    if rng.random() < rate / 4:
        x[int(rng.integers(c))] = np.nan
