"""Transfer experiences: what a base algorithm did for a (source, target) pair.

An experience (Wei et al., ICML 2018) is ``(S_e, T_e, W_e, l_e)``: a pair, the projection
a base algorithm learned for it, and the improvement ratio
``l_e = accuracy on the target with transfer / accuracy without`` (here: 1-NN on the
projected source and labelled target, against 1-NN on the labelled target alone in the
original features). The store keeps, per experience, ``W_e``, ``l_e``, the reflection
features of ``(S_e, T_e, W_e)`` (:func:`~transferkit.l2t.features.reflection_features`)
and where it came from; the raw data are not kept.

:class:`ExperienceStore` with a folder writes each experience atomically as it is made
and :func:`generate_experiences` skips the ones already there, so a killed generation
resumes where it stopped. The folder records the feature settings; adding experiences
made with other settings is an error.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._io import atomic_write, atomic_write_json
from ..train.interface import progress_wanted
from .algorithms import DEFAULT_BASES, create_base_algorithm
from .features import DEFAULT_EXPONENTS, PairStatistics, _matrix, reflection_features

__all__ = ["Experience", "ExperienceStore", "TransferPair", "generate_experiences",
           "improvement_ratio", "make_experience", "nearest_neighbour_accuracy"]


@dataclass
class TransferPair:
    """A source and a target: labelled source, a few labelled target rows, unlabelled
    target rows, and (for measuring an experience) the labels of held-out target rows.

    ``X_test``/``y_test`` default to the unlabelled rows (transductive), whose labels are
    then given as ``y_unlabelled_truth``; neither is ever used to learn ``W``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ys, yt = np.repeat([0, 1], 30), np.repeat([0, 1], 20)
    >>> Xs = rng.normal(size=(60, 4)) + 2 * ys[:, None]
    >>> Xt = rng.normal(size=(40, 4)) + 2 * yt[:, None] + 0.5
    >>> pair = TransferPair(Xs, ys, Xt[4:], Xt[[0, 1, 38, 39]], yt[[0, 1, 38, 39]],
    ...                     Xt[4:], yt[4:])
    >>> pair.target.shape, pair.test_set()[0].shape   # unlabelled + labelled rows; test rows
    ((40, 4), (36, 4))
    """

    Xs: NDArray[np.float64]
    ys: NDArray[np.int64]
    Xt: NDArray[np.float64]
    Xt_labelled: NDArray[np.float64]
    yt_labelled: NDArray[np.int64]
    X_test: NDArray[np.float64] | None = None
    y_test: NDArray[np.int64] | None = None

    def __post_init__(self) -> None:
        self.Xs, self.Xt = _matrix(self.Xs, "Xs"), _matrix(self.Xt, "Xt")
        self.Xt_labelled = _matrix(self.Xt_labelled, "Xt_labelled")
        self.ys, self.yt_labelled = np.asarray(self.ys), np.asarray(self.yt_labelled)
        d = self.Xs.shape[1]
        for name in ("Xt", "Xt_labelled"):
            if getattr(self, name).shape[1] != d:
                raise ValueError(f"{name} has {getattr(self, name).shape[1]} columns; the "
                                 f"source has {d}")
        for X, y, what in ((self.Xs, self.ys, "source"),
                           (self.Xt_labelled, self.yt_labelled, "labelled target")):
            if y.shape != (len(X),):
                raise ValueError(f"{what}: {len(X)} rows but labels of shape {y.shape}")
        if self.X_test is not None:
            self.X_test = _matrix(self.X_test, "X_test")
            self.y_test = np.asarray(self.y_test)
            if self.y_test.shape != (len(self.X_test),):
                raise ValueError(f"X_test has {len(self.X_test)} rows but y_test has shape "
                                 f"{self.y_test.shape}")

    @property
    def target(self) -> NDArray[np.float64]:
        """Every target row the learner may see (unlabelled and labelled)."""
        return np.vstack([self.Xt, self.Xt_labelled])

    def statistics(self, exponents: tuple[int, ...] = DEFAULT_EXPONENTS,
                   n_neighbors: int = 5, seed: int = 0) -> PairStatistics:
        return PairStatistics.from_arrays(self.Xs, self.target, exponents, n_neighbors, seed)

    def test_set(self) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        if self.X_test is None or self.y_test is None:
            raise ValueError("this pair has no test labels: an experience needs X_test and "
                             "y_test (or the unlabelled rows' true labels) to be measured")
        return self.X_test, self.y_test


def nearest_neighbour_accuracy(train_X: NDArray[np.float64], train_y: NDArray[np.int64],
                               X: NDArray[np.float64], y: NDArray[np.int64]) -> float:
    """Accuracy of a 1-nearest-neighbour classifier (Euclidean) on ``(X, y)``.

    Examples
    --------
    >>> X, y = np.array([[0.0], [1.0], [10.0]]), np.array([0, 0, 1])
    >>> nearest_neighbour_accuracy(X, y, np.array([[0.4], [9.0]]), np.array([0, 1]))
    1.0
    """
    from sklearn.neighbors import KNeighborsClassifier

    clf = KNeighborsClassifier(n_neighbors=1).fit(train_X, train_y)
    return float((clf.predict(X) == y).mean())


def improvement_ratio(pair: TransferPair, W: NDArray[np.float64]) -> tuple[float, float, float]:
    """``(l, accuracy with transfer, accuracy without)`` of projection ``W`` on ``pair``.

    With transfer: 1-NN on ``[Xs W; Xt_labelled W]``; without: 1-NN on the labelled target
    in the original features (the paper's "without transfer" baseline).

    Examples
    --------
    >>> from transferkit.testing import synthetic_transfer_pair
    >>> pair = synthetic_transfer_pair(shift=0.5)       # 60 source rows, 4 + 36 target
    >>> ratio, with_transfer, without = improvement_ratio(pair, np.eye(4))
    >>> bool(np.isclose(ratio, with_transfer / without))
    True
    """
    X_test, y_test = pair.test_set()
    with_t = nearest_neighbour_accuracy(np.vstack([pair.Xs, pair.Xt_labelled]) @ W,
                                        np.concatenate([pair.ys, pair.yt_labelled]),
                                        X_test @ W, y_test)
    without = nearest_neighbour_accuracy(pair.Xt_labelled, pair.yt_labelled, X_test, y_test)
    if without <= 0:
        raise ValueError("the target-only baseline got every test row wrong: the improvement "
                         "ratio is undefined for this pair")
    return with_t / without, with_t, without


@dataclass
class Experience:
    """One experience: the reflection features, the ratio ``l``, ``W`` and its origin.

    Examples
    --------
    >>> from transferkit.testing import synthetic_transfer_pair
    >>> pair = synthetic_transfer_pair(shift=0.5)       # 60 source rows, 4 + 36 target
    >>> exp = make_experience(pair, "shift-0.5", "pca@2", 2, pair.statistics())
    >>> exp.key, exp.W.shape, exp.features.shape
    ('shift-0.5/pca@2', (4, 2), (31,))
    """

    features: NDArray[np.float64]
    ratio: float
    W: NDArray[np.float64]
    algorithm: str
    pair: str
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.pair}/{self.algorithm}"


def _file_name(key: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in key) + ".npz"


class ExperienceStore:
    """A collection of experiences, in memory or in a folder (one atomic file each).

    Parameters
    ----------
    path : folder, optional
        Where experiences are written as they are added and read back when the store is
        opened again (resume). Without it the store lives in memory.
    exponents, n_neighbors : feature settings
        Recorded in the folder; a store opened with other settings is an error.

    Examples
    --------
    >>> from transferkit.testing import synthetic_transfer_pair
    >>> pair = synthetic_transfer_pair(shift=0.5)       # 60 source rows, 4 + 36 target
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     store = generate_experiences([("shift-0.5", pair)], ExperienceStore(folder),
    ...                                  algorithms=("identity", "pca"), n_components=2)
    ...     again = ExperienceStore(folder)                  # read back: a killed run resumes
    ...     len(store), len(again), "shift-0.5/pca" in again
    (2, 2, True)
    """

    def __init__(self, path: str | os.PathLike[str] | None = None,
                 exponents: Sequence[int] = DEFAULT_EXPONENTS, n_neighbors: int = 5) -> None:
        self.path = None if path is None else Path(path)
        self.exponents = tuple(int(e) for e in exponents)
        self.n_neighbors = int(n_neighbors)
        self._items: dict[str, Experience] = {}
        if self.path is not None:
            self._open()

    def _settings(self) -> dict[str, Any]:
        # format 2: features [d, Q (K x K), 1/tau] from the linear-time estimator
        return {"exponents": list(self.exponents), "n_neighbors": self.n_neighbors,
                "format": 2}

    def _open(self) -> None:
        assert self.path is not None
        manifest = self.path / "store.json"
        if manifest.exists():
            saved = json.loads(manifest.read_text())
            if saved != self._settings():
                raise ValueError(f"experience store {self.path} was made with feature "
                                 f"settings {saved}; asked for {self._settings()}")
        else:
            atomic_write_json(manifest, self._settings())
        for f in sorted(self.path.glob("*.npz")):
            try:
                with np.load(f, allow_pickle=False) as z:
                    exp = Experience(z["features"], float(z["ratio"]), z["W"],
                                     str(z["algorithm"]), str(z["pair"]),
                                     json.loads(str(z["info"])))
            except (OSError, ValueError, KeyError):
                continue  # a damaged file is remade by the next generation
            self._items[exp.key] = exp

    def add(self, exp: Experience) -> None:
        k = len(self.exponents)
        if len(exp.features) != k * k + k + 1:
            raise ValueError(f"experience {exp.key!r} has {len(exp.features)} features; this "
                             f"store's settings give {k * k + k + 1}")
        if self.path is not None:
            def write(f: Any) -> None:
                np.savez(f, features=exp.features, ratio=exp.ratio, W=exp.W,
                         algorithm=exp.algorithm, pair=exp.pair, info=json.dumps(exp.info))

            atomic_write(self.path / _file_name(exp.key), write)
        self._items[exp.key] = exp

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Experience]:
        return iter(self._items[k] for k in sorted(self._items))

    def arrays(self) -> tuple[NDArray[np.float64], NDArray[np.float64], list[str]]:
        """``(features (n, F), ratios (n,), pair names)`` of every experience."""
        items = list(self)
        if not items:
            raise ValueError("the experience store is empty")
        return (np.stack([e.features for e in items]), np.array([e.ratio for e in items]),
                [e.pair for e in items])


def _parse(algorithm: str, n_components: int) -> tuple[str, int]:
    """``"pca@8"`` -> ("pca", 8); a plain name keeps ``n_components``."""
    name, _, p = algorithm.partition("@")
    if p and not p.isdigit():
        raise ValueError(f"algorithm {algorithm!r}: expected NAME or NAME@COMPONENTS")
    return name, int(p) if p else int(n_components)


def make_experience(pair: TransferPair, name: str, algorithm: str, n_components: int,
                    stats: PairStatistics) -> Experience:
    """Run one base algorithm on one pair and measure the experience.

    ``algorithm`` may carry its own latent dimension, ``"pca@8"``; ``stats`` is the pair's
    :class:`PairStatistics` (``pair.statistics(...)`` with the store's feature settings).

    Examples
    --------
    >>> from transferkit.testing import synthetic_transfer_pair
    >>> pair = synthetic_transfer_pair(shift=0.5)       # 60 source rows, 4 + 36 target
    >>> exp = make_experience(pair, "shift-0.5", "tca", 2, pair.statistics())
    >>> exp.algorithm, sorted(exp.info), bool(exp.ratio > 0)
    ('tca', ['accuracy', 'accuracy_without'], True)
    """
    base, p = _parse(algorithm, n_components)
    W = create_base_algorithm(base)(pair.Xs, pair.ys, pair.target, min(p, pair.Xs.shape[1]))
    feats = reflection_features(W, stats).detach().numpy()
    ratio, acc_t, acc_nt = improvement_ratio(pair, W)
    return Experience(feats, ratio, W, algorithm, name,
                      {"accuracy": acc_t, "accuracy_without": acc_nt})


def generate_experiences(
    pairs: Iterable[tuple[str, TransferPair | Callable[[], TransferPair]]],
    store: ExperienceStore,
    algorithms: Sequence[str] = DEFAULT_BASES,
    n_components: int = 16,
    progress: bool | None = None,
    total: int | None = None,
) -> ExperienceStore:
    """Add to ``store`` the experiences of every algorithm on every named pair.

    ``pairs`` yields ``(name, pair)``; a pair may be a zero-argument callable returning a
    :class:`TransferPair`, built only when one of its experiences is missing, so resuming a
    large generation costs little. Names must be unique. An algorithm named ``"pca@8"``
    uses 8 components instead of ``n_components`` (several dimensions of one algorithm
    give the reflection function more varied experiences).

    Examples
    --------
    >>> from transferkit.testing import synthetic_transfer_pair
    >>> pair = synthetic_transfer_pair(shift=0.5)       # 60 source rows, 4 + 36 target
    >>> store = generate_experiences([("a", pair), ("b", lambda: pair)], ExperienceStore(),
    ...                              algorithms=("identity", "pca@2", "pca"), n_components=2)
    >>> features, ratios, groups = store.arrays()
    >>> features.shape, ratios.shape, sorted(set(groups))
    ((6, 31), (6,), ['a', 'b'])
    """
    from tqdm.auto import tqdm

    if progress is None:
        progress = progress_wanted()
    for alg in algorithms:
        create_base_algorithm(_parse(alg, n_components)[0])  # unknown names fail first
    for name, pair in tqdm(pairs, total=total, desc="experiences", disable=not progress,
                           leave=False):
        missing = [a for a in algorithms if f"{name}/{a}" not in store]
        if not missing:
            continue
        built = pair() if callable(pair) else pair
        stats = built.statistics(store.exponents, store.n_neighbors)
        for alg in missing:
            store.add(make_experience(built, name, alg, n_components, stats))
    return store
