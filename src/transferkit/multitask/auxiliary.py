"""Automatically selected auxiliary tasks for multivariate time series (DSMT-Nets).

Schwab et al., "Not to Cry Wolf: Distantly Supervised Multitask Learning in Critical
Care", ICML 2018 (arXiv 1802.05027), as the authors' public code does it
(d909b/DSMT-Nets, ``data_access/auxiliary_tasks.py``): a bank of time-series features per
channel from tsfresh, tsfresh's per-feature relevance test with Benjamini-Yekutieli FDR
on the **labelled** windows only, a seeded random choice of K relevant features (padded
with randomly chosen other features, with a warning, when fewer are relevant), and a
standardisation fitted on labelled + unlabelled windows. Each selected feature is then a
regression target for one auxiliary task.

Feature bank (``fc_parameters``): the authors' code uses tsfresh's
``EfficientFCParameters`` (73 calculators) and notes the paper used
``ComprehensiveFCParameters``. Both cost tens of milliseconds per series on a CPU; the
default here, ``"lean"``, is ``EfficientFCParameters`` restricted to the
calculators in :data:`LEAN_CALCULATORS` (amplitude, spectral, shape and level-crossing
summaries, each costing at most ~0.4 ms per series) plus ``MinimalFCParameters``: about
59 features per channel at ~2 ms per series, chosen for the CPU budget of the claim by
timing alone, before any result was seen. ``"efficient"``, ``"comprehensive"``,
``"minimal"`` or a tsfresh settings dict select others. tsfresh is the optional extra
``timeseries``.

Missing samples (NaN) are filled for feature extraction by linear interpolation within a
channel (a channel missing altogether becomes zeros), and features that still come out
non-finite are imputed with tsfresh's column-wise range imputation fitted on the
training windows.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["AuxiliaryTasks", "FeatureBank", "LEAN_CALCULATORS", "feature_bank",
           "fc_parameters", "select_auxiliary_tasks"]

LEAN_CALCULATORS = (
    "abs_energy", "absolute_sum_of_changes", "binned_entropy", "cid_ce", "count_above_mean",
    "energy_ratio_by_chunks", "fft_aggregated", "first_location_of_maximum",
    "first_location_of_minimum", "index_mass_quantile", "kurtosis", "mean_abs_change",
    "number_crossing_m", "ratio_beyond_r_sigma", "skewness", "spkt_welch_density",
)


def _tsfresh() -> Any:
    try:
        import tsfresh
    except ImportError:
        raise ImportError("auxiliary task selection needs tsfresh: pip install "
                          "'transferkit[timeseries]'") from None
    return tsfresh


def fc_parameters(name: str | Mapping[str, Any] = "lean") -> dict[str, Any]:
    """tsfresh feature-calculator settings by name (or a settings dict, returned as is).

    Examples
    --------
    >>> sorted(fc_parameters("minimal"))[:3]
    ['absolute_maximum', 'length', 'maximum']
    >>> len(fc_parameters("lean")) > len(fc_parameters("minimal"))
    True
    """
    _tsfresh()
    from tsfresh.feature_extraction import (
        ComprehensiveFCParameters,
        EfficientFCParameters,
        MinimalFCParameters,
    )

    if isinstance(name, Mapping):
        return dict(name)
    if name == "lean":
        eff = EfficientFCParameters()
        out = {k: eff[k] for k in LEAN_CALCULATORS}
        out.update(MinimalFCParameters())
        return out
    table = {"efficient": EfficientFCParameters, "comprehensive": ComprehensiveFCParameters,
             "minimal": MinimalFCParameters}
    if name not in table:
        raise ValueError(f"fc_parameters must be 'lean', 'efficient', 'comprehensive', "
                         f"'minimal' or a tsfresh settings dict; got {name!r}")
    return dict(table[name]())


def _fill(x: NDArray[np.float32]) -> NDArray[np.float64]:
    """Linear interpolation over NaN within each (window, channel); all-NaN -> 0."""
    out = np.asarray(x, dtype=np.float64).copy()
    idx = np.arange(out.shape[-1])
    for w, c in zip(*np.nonzero(np.isnan(out).any(axis=2)), strict=True):
        row = out[w, c]
        ok = ~np.isnan(row)
        out[w, c] = np.interp(idx, idx[ok], row[ok]) if ok.any() else 0.0
    return out


@dataclass
class FeatureBank:
    """Features per window: ``values`` (n_windows, n_features) and their ``names``
    (``<channel>__<tsfresh feature>``).

    Examples
    --------
    >>> bank = FeatureBank(np.arange(6.0).reshape(3, 2), ["ecg__mean", "ecg__maximum"])
    >>> len(bank), bank.rows([2, 0]).values.tolist()
    (3, [[4.0, 5.0], [0.0, 1.0]])
    """

    values: NDArray[np.float64]
    names: list[str]

    def __len__(self) -> int:
        return len(self.values)

    def rows(self, index: ArrayLike) -> FeatureBank:
        return FeatureBank(self.values[np.asarray(index)], self.names)


def feature_bank(
    X: ArrayLike,
    channels: tuple[str, ...] | list[str] | None = None,
    fc: str | Mapping[str, Any] = "lean",
    impute_from: FeatureBank | None = None,
    n_jobs: int = 0,
) -> FeatureBank:
    """tsfresh features of every channel of every window.

    Parameters
    ----------
    X : array (n_windows, n_channels, n_steps), NaN for missing samples
    channels : names of the channels (default ``ch0``, ``ch1``, ...)
    fc : feature-calculator settings (see :func:`fc_parameters`)
    impute_from : FeatureBank, optional
        Non-finite features are imputed with the column ranges and medians of this bank
        (the training windows'); by default of ``X``'s own bank.
    n_jobs : int
        tsfresh's worker processes (0: in this process).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(4, 2, 32))
    >>> X[0, 1, 5:9] = np.nan                        # a dropout: interpolated, not dropped
    >>> bank = feature_bank(X, ("ecg", "pleth"), "minimal")
    >>> bank.values.shape[0], bank.names[0].split("__")[0], bool(np.isfinite(bank.values).all())
    (4, 'ecg', True)
    """
    _tsfresh()
    import pandas as pd
    from tsfresh import extract_features
    from tsfresh.utilities.dataframe_functions import (
        get_range_values_per_column,
        impute_dataframe_range,
    )

    x = _fill(np.asarray(X))
    if x.ndim != 3:
        raise ValueError(f"X must be (n_windows, n_channels, n_steps); got shape {x.shape}")
    n, c, t = x.shape
    names = list(channels) if channels is not None else [f"ch{i}" for i in range(c)]
    if len(names) != c:
        raise ValueError(f"{len(names)} channel names for {c} channels")
    frame = pd.DataFrame({"id": np.repeat(np.arange(n), t), "time": np.tile(np.arange(t), n),
                          **{name: x[:, i, :].ravel() for i, name in enumerate(names)}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        feats = extract_features(frame, column_id="id", column_sort="time",
                                 default_fc_parameters=fc_parameters(fc), n_jobs=n_jobs,
                                 disable_progressbar=True)
    feats = feats.sort_index()
    if impute_from is not None:
        if list(feats.columns) != impute_from.names:
            raise ValueError("impute_from was made with other channels or settings")
        ref = pd.DataFrame(impute_from.values, columns=impute_from.names)
    else:
        ref = feats
    ref = ref.replace([np.inf, -np.inf], np.nan)
    col_max, col_min, col_median = get_range_values_per_column(ref)
    col_median = {k: (0.0 if not np.isfinite(v) else v) for k, v in col_median.items()}
    col_max = {k: (col_median[k] if not np.isfinite(v) else v) for k, v in col_max.items()}
    col_min = {k: (col_median[k] if not np.isfinite(v) else v) for k, v in col_min.items()}
    with warnings.catch_warnings():  # tsfresh's own pandas deprecation notes
        warnings.simplefilter("ignore")
        feats = impute_dataframe_range(feats.astype(np.float64), col_max, col_min, col_median)
    return FeatureBank(feats.to_numpy(dtype=np.float64), [str(col) for col in feats.columns])


@dataclass
class AuxiliaryTasks:
    """The selected auxiliary targets and how to standardise them.

    ``columns`` index the feature bank; ``relevant`` how many of them passed the FDR test
    (the rest padded); ``p_values`` those of the test for every chosen column.

    Examples
    --------
    >>> tasks = AuxiliaryTasks(np.array([1]), ["ecg__mean"], np.array([2.0]), np.array([0.5]),
    ...                        relevant=1, n_relevant_total=3)
    >>> tasks.k, tasks.targets(FeatureBank(np.array([[0.0, 3.0]]), ["a", "ecg__mean"])).tolist()
    (1, [[2.0]])
    """

    columns: NDArray[np.int64]
    names: list[str]
    mean: NDArray[np.float64]
    scale: NDArray[np.float64]
    relevant: int
    n_relevant_total: int
    p_values: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))

    @property
    def k(self) -> int:
        return len(self.columns)

    def targets(self, bank: FeatureBank) -> NDArray[np.float32]:
        """Standardised auxiliary targets, shape (n_windows, K)."""
        z = (bank.values[:, self.columns] - self.mean) / self.scale
        return z.astype(np.float32)


def select_auxiliary_tasks(
    labelled: FeatureBank,
    y: ArrayLike,
    train: FeatureBank,
    k: int,
    seed: int = 0,
    fdr_level: float = 0.05,
) -> AuxiliaryTasks:
    """Pick K auxiliary tasks: relevant features of the LABELLED windows, chosen at random.

    Parameters
    ----------
    labelled : FeatureBank
        Features of the labelled training windows only (never validation or test).
    y : array of 0/1, one per labelled window
    train : FeatureBank
        Features of the labelled + unlabelled training windows: the standardisation is
        fitted on them (no labels are used).
    k : int
        Number of auxiliary tasks.
    seed : int
        The random choice among the relevant features (and the padding).
    fdr_level : float
        Benjamini-Yekutieli false discovery rate of tsfresh's relevance test
        (``hypotheses_independent=False``).

    Examples
    --------
    Features that separate the classes are found relevant on the labelled windows (a noise
    feature can pass the test by chance, at the FDR's rate); K of them are drawn and
    standardised on all training windows:

    >>> rng = np.random.default_rng(1)
    >>> y = np.r_[np.zeros(30), np.ones(30)]
    >>> bank = FeatureBank(np.c_[y + rng.normal(0, 0.3, 60), rng.normal(size=(60, 3))],
    ...                    ["useful", "noise1", "noise2", "noise3"])
    >>> tasks = select_auxiliary_tasks(bank, y, bank, k=1, seed=0)
    >>> tasks.names, tasks.n_relevant_total
    (['useful'], 1)
    """
    _tsfresh()
    import pandas as pd
    from tsfresh.feature_selection.relevance import calculate_relevance_table

    labels = np.asarray(y, dtype=np.float64)
    if labels.shape != (len(labelled),):
        raise ValueError(f"y must have one label per labelled window ({len(labelled)}); got "
                         f"shape {labels.shape}")
    if np.isnan(labels).any() or not np.isin(labels, (0, 1)).all():
        raise ValueError("y must be 0/1 with no missing label (select on labelled windows)")
    if len(np.unique(labels)) < 2:
        raise ValueError("the labelled windows hold one class only: no relevance test")
    if labelled.names != train.names:
        raise ValueError("labelled and train feature banks have different columns")
    k = int(k)
    if not 0 <= k <= len(labelled.names):
        raise ValueError(f"k must be in [0, {len(labelled.names)}]; got {k}")
    X = pd.DataFrame(labelled.values, columns=labelled.names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = calculate_relevance_table(X, pd.Series(labels.astype(int), index=X.index),
                                          ml_task="classification", n_jobs=0,
                                          hypotheses_independent=False, fdr_level=fdr_level)
    table = table.reindex(labelled.names)
    relevant = np.flatnonzero(table["relevant"].fillna(False).to_numpy(dtype=bool))
    constant = table["type"].to_numpy() == "constant"
    others = np.setdiff1d(np.flatnonzero(~constant), relevant)
    rng = np.random.default_rng([seed, 2018, 4])
    chosen = rng.permutation(relevant)[:k]
    if len(chosen) < k:
        pad = rng.permutation(others)[:k - len(chosen)]
        if len(chosen) + len(pad) < k:
            raise ValueError(f"only {len(chosen) + len(pad)} non-constant features for "
                             f"k = {k} auxiliary tasks")
        warnings.warn(f"{len(relevant)} features are relevant at FDR {fdr_level} on "
                      f"{len(labels)} labelled windows; padding {k - len(relevant)} of the "
                      f"{k} auxiliary tasks with other features", stacklevel=2)
        chosen = np.concatenate([chosen, pad])
    vals = train.values[:, chosen]
    mean, scale = vals.mean(0), vals.std(0)
    scale = np.where(scale > 0, scale, 1.0)
    p = table["p_value"].to_numpy(dtype=np.float64)[chosen]
    return AuxiliaryTasks(chosen.astype(np.int64), [labelled.names[i] for i in chosen],
                          mean, scale, int(min(len(relevant), k)), int(len(relevant)), p)
