"""Difficulty scorers: how easy each training example is (higher = easier).

Weinshall, Cohen, Amir (ICML 2018, arXiv 1802.03796) score an example by the confidence of
a *transferred* teacher: features from a network trained on another task or domain, a
probabilistic classifier fitted on those features of the training set, and the score is the
probability it gives the example's true class. All scorers follow the scikit-learn
contract: ``fit(X, y)`` returns ``self``, fitted attributes end in ``_``, and
``train_scores_`` holds the scores of the examples ``fit`` saw, which is what a curriculum
orders; ``score_samples(X, y)`` scores new examples.

- :class:`TransferScorer`: the paper's. The authors' code (GuyHacohen/curriculum_learning,
  ``transfer_learning.py``) fits ``SVC(probability=True)`` on the whole training set and
  scores that same set in-sample (``cross_fit=0`` here); by default we cross-fit instead
  (``cross_fit=5``: each example is scored by a classifier fitted on the other folds), so
  an example's score does not reward the classifier's memory of it.
- :class:`ModelScorer`: self-paced / bootstrap scoring by a trained model's own
  probability of the true class (the authors' "same network" order).
- :class:`ArrayScorer`: scores you already have.

They are registered as ``transfer``, ``model`` and ``array`` (:func:`create_scorer`,
:func:`list_scorers`); :func:`register_scorer` adds one of yours.

Only training data are ever given to ``fit``; test data cannot influence the order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._estimator import Params, check_fitted
from .._registry import Registry

__all__ = ["ArrayScorer", "DifficultyScorer", "ModelScorer", "TransferScorer", "create_scorer",
           "list_scorers", "register_scorer"]


def _true_class_probability(proba: NDArray[np.float64], y: NDArray[Any],
                            classes: NDArray[Any]) -> NDArray[np.float64]:
    position = {c: i for i, c in enumerate(classes.tolist())}
    missing = sorted(set(y.tolist()) - set(position))
    if missing:
        raise ValueError(f"labels {missing} were not seen when the scorer was fitted")
    cols = np.array([position[v] for v in y.tolist()], dtype=np.int64)
    return np.asarray(proba[np.arange(len(y)), cols], dtype=np.float64)


def _xy(X: Any, y: Any) -> tuple[NDArray[Any], NDArray[Any]]:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-d labels; got shape {y.shape}")
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
    return X, y


class DifficultyScorer(Params):
    """Base class: ``fit(X, y)`` sets ``train_scores_``; ``score_samples(X, y)`` scores more.

    Examples
    --------
    A scorer of one's own sets ``train_scores_`` in ``fit`` (higher = easier); a
    :class:`~transferkit.curriculum.CurriculumSampler` orders by them:

    >>> class Nearness(DifficultyScorer):
    ...     def fit(self, X, y):
    ...         self.train_scores_ = -np.linalg.norm(np.asarray(X, dtype=float), axis=1)
    ...         return self
    >>> Nearness().fit_score([[3.0, 4.0], [0.0, 1.0]], [0, 1]).tolist()
    [-5.0, -1.0]
    """

    train_scores_: NDArray[np.float64]

    def fit(self, X: Any, y: Any) -> DifficultyScorer:
        raise NotImplementedError

    def score_samples(self, X: Any, y: Any) -> NDArray[np.float64]:
        raise NotImplementedError

    def fit_score(self, X: Any, y: Any) -> NDArray[np.float64]:
        """``fit(X, y).train_scores_``."""
        return np.asarray(self.fit(X, y).train_scores_)


SCORERS: Registry[type[DifficultyScorer]] = Registry("difficulty scorer", base=DifficultyScorer)


def register_scorer(name: str) -> Callable[[type[DifficultyScorer]], type[DifficultyScorer]]:
    """Class decorator adding a :class:`DifficultyScorer` subclass under ``name``.

    Examples
    --------
    >>> class Shortest(DifficultyScorer):
    ...     def fit(self, X, y):
    ...         self.train_scores_ = -np.abs(np.asarray(X, dtype=float)).sum(1)
    ...         return self
    >>> with SCORERS.temporary("shortest-demo", Shortest):
    ...     create_scorer("shortest-demo").fit_score([[1.0], [-3.0]], [0, 1]).tolist()
    [-1.0, -3.0]
    """
    return SCORERS.decorator(name)


def create_scorer(name: str, **kwargs: Any) -> DifficultyScorer:
    """Build a registered scorer, e.g. ``create_scorer("transfer", features=embed)``.

    Examples
    --------
    >>> create_scorer("array", scores=[0.2, 0.9]).fit_score([[0], [1]], [0, 1]).tolist()
    [0.2, 0.9]
    """
    return SCORERS.get(name)(**kwargs)


def list_scorers() -> list[str]:
    """Names of the registered difficulty scorers.

    Examples
    --------
    >>> list_scorers()
    ['array', 'model', 'transfer']
    """
    return SCORERS.names()


@register_scorer("transfer")
class TransferScorer(DifficultyScorer):
    """Probability of the true class under a classifier on a transferred teacher's features.

    Parameters
    ----------
    features : callable(X) -> array (n, d)
        The teacher's representation, e.g. the penultimate layer of a network trained on
        another task or domain (:meth:`transferkit.nets.SplitNet.features`, or an ImageNet
        backbone's features from the ``vision`` extra); ``None`` uses ``X`` as given.
    classifier : scikit-learn classifier with ``predict_proba``, optional
        Default: standardisation, then an RBF SVC with Platt-scaled probabilities, as the
        authors' ``SVC(probability=True)`` (written ``CalibratedClassifierCV(SVC(),
        ensemble=False)``, scikit-learn's replacement for that deprecated flag).
    cross_fit : int
        Folds for out-of-fold scores of the training set (default 5); 0 scores it
        in-sample, as the authors' code does.
    random_state : int
        Seeds the folds and the SVC's internal calibration.

    Notes
    -----
    Cost: the default fits 30 SVCs (5 cross-fit folds, each an SVC calibrated by its own
    5-fold cross-validation plus a refit), and an SVC's fit grows with the square of the
    examples. Measured on 2 CPU cores (2026-12-06, 1,300 examples, 10 classes): 9 s with
    256 features, 29 s with 1,280 (an ImageNet backbone's pooled features); ``cross_fit=0``
    (the authors' in-sample scores) took 2 s and 6 s. For tens of thousands of examples,
    give a linear ``classifier`` or score a subsample.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(-2, 1, (30, 2)), rng.normal(2, 1, (30, 2))]
    >>> y = np.r_[np.zeros(30, int), np.ones(30, int)]
    >>> scores = TransferScorer(cross_fit=3).fit_score(X, y)
    >>> far, near = np.abs(X[:, 0]) > 3, np.abs(X[:, 0]) < 0.5
    >>> scores.shape, bool(scores[far].mean() > scores[near].mean())
    ((60,), True)
    """

    def __init__(self, features: Callable[[Any], Any] | None = None, classifier: Any = None,
                 cross_fit: int = 5, random_state: int = 0) -> None:
        self.features = features
        self.classifier = classifier
        self.cross_fit = cross_fit
        self.random_state = random_state

    def _features(self, X: Any) -> NDArray[np.float64]:
        Z = X if self.features is None else self.features(X)
        if hasattr(Z, "detach"):
            Z = Z.detach().cpu().numpy()
        Z = np.asarray(Z, dtype=np.float64)
        if Z.ndim != 2:
            Z = Z.reshape(len(Z), -1)
        if not np.isfinite(Z).all():
            raise ValueError("the teacher's features have NaN or infinite values")
        return Z

    def _make(self) -> Any:
        from sklearn.base import clone
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVC

        if self.classifier is not None:
            return clone(self.classifier)
        # what SVC(probability=True) did (Platt scaling fitted by internal cross-validation),
        # in the form scikit-learn 1.9 asks for
        svc = CalibratedClassifierCV(SVC(random_state=self.random_state), ensemble=False)
        return make_pipeline(StandardScaler(), svc)

    def fit(self, X: Any, y: Any) -> TransferScorer:
        X, y = _xy(X, y)
        Z = self._features(X)
        classes, counts = np.unique(y, return_counts=True)
        if len(classes) < 2:
            raise ValueError("a difficulty scorer needs at least two classes")
        folds = int(self.cross_fit)
        if folds == 1 or folds < 0:
            raise ValueError(f"cross_fit must be 0 (in-sample) or >= 2 folds; got {folds}")
        if folds and counts.min() < folds:
            raise ValueError(f"cross_fit = {folds} folds need >= {folds} examples of every "
                             f"class; the smallest class has {counts.min()}")
        self.model_ = self._make().fit(Z, y)
        self.classes_ = np.asarray(self.model_.classes_)
        if folds == 0:
            scores = _true_class_probability(self.model_.predict_proba(Z), y, self.classes_)
        else:
            from sklearn.model_selection import StratifiedKFold

            scores = np.empty(len(y))
            split = StratifiedKFold(folds, shuffle=True, random_state=self.random_state)
            for train, held in split.split(Z, y):
                model = self._make().fit(Z[train], y[train])
                scores[held] = _true_class_probability(
                    model.predict_proba(Z[held]), y[held], np.asarray(model.classes_))
        self.train_scores_ = scores
        return self

    def score_samples(self, X: Any, y: Any) -> NDArray[np.float64]:
        check_fitted(self, "model_")
        X, y = _xy(X, y)
        return _true_class_probability(self.model_.predict_proba(self._features(X)), y,
                                       self.classes_)


@register_scorer("model")
class ModelScorer(DifficultyScorer):
    """Self-paced / bootstrap scores: a trained model's probability of the true class.

    Parameters
    ----------
    predict_proba : callable(X) -> array (n, n_classes)
        Class probabilities of a model already trained on the training set (columns are
        classes 0..n_classes-1).

    Examples
    --------
    >>> proba = lambda X: np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]])
    >>> ModelScorer(proba).fit_score(np.zeros((3, 2)), [0, 1, 1]).tolist()
    [0.9, 0.7, 0.4]
    """

    def __init__(self, predict_proba: Callable[[Any], Any] | None = None) -> None:
        self.predict_proba = predict_proba

    def fit(self, X: Any, y: Any) -> ModelScorer:
        if self.predict_proba is None:
            raise ValueError("ModelScorer needs predict_proba, a trained model's callable")
        self.train_scores_ = self.score_samples(X, y)
        return self

    def score_samples(self, X: Any, y: Any) -> NDArray[np.float64]:
        X, y = _xy(X, y)
        assert self.predict_proba is not None
        proba = self.predict_proba(X)
        if hasattr(proba, "detach"):
            proba = proba.detach().cpu().numpy()
        proba = np.asarray(proba, dtype=np.float64)
        if proba.ndim != 2 or len(proba) != len(y):
            raise ValueError(f"predict_proba must return (n, n_classes); got {proba.shape}")
        return _true_class_probability(proba, y, np.arange(proba.shape[1]))


@register_scorer("array")
class ArrayScorer(DifficultyScorer):
    """Scores given by the user, one per training example (higher = easier).

    Examples
    --------
    >>> ArrayScorer([0.3, 0.9, 0.1]).fit_score(np.zeros((3, 1)), [0, 1, 0]).tolist()
    [0.3, 0.9, 0.1]
    """

    def __init__(self, scores: Any = None) -> None:
        self.scores = scores

    def fit(self, X: Any, y: Any) -> ArrayScorer:
        X, y = _xy(X, y)
        scores = np.asarray(self.scores, dtype=np.float64)
        if scores.shape != (len(y),):
            raise ValueError(f"scores must hold one value per training example ({len(y)}); "
                             f"got shape {scores.shape}")
        if not np.isfinite(scores).all():
            raise ValueError("scores has NaN or infinite values")
        self.train_scores_ = scores
        return self

    def score_samples(self, X: Any, y: Any) -> NDArray[np.float64]:
        raise ValueError("an ArrayScorer only knows the scores it was given")
