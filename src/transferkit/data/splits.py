"""Class subsets and seeded, stratified few-shot splits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from .domain import Domain

__all__ = ["class_subset", "few_shot_split", "split_images", "stratified_indices",
           "stratified_split"]


def _check_domain(domain: object, fn: str) -> Domain:
    if not isinstance(domain, Domain):
        raise TypeError(
            f"{fn} takes a transferkit.data.Domain (images, labels, name); got a "
            f"{type(domain).__name__}"
        )
    return domain


def _check_count(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a whole number; got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")
    return value


def _generator(seed: object) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(
            f"seed must be an int or a torch.Generator (splits are a function of the seed "
            f"alone); got {seed!r}"
        )
    return torch.Generator().manual_seed(seed)


def class_subset(domain: Domain, classes: Sequence[int], relabel: bool = True) -> Domain:
    """Keep only ``classes``; with ``relabel`` they become 0..len(classes)-1 in the given order.

    Examples
    --------
    >>> from transferkit.data import load_digits
    >>> target = class_subset(load_digits(), [5, 6, 7, 8, 9])
    >>> target.classes
    [0, 1, 2, 3, 4]
    """
    domain = _check_domain(domain, "class_subset")
    classes = [int(c) for c in classes]
    if not classes or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be a non-empty list without repeats; got {classes}")
    missing = sorted(set(classes) - set(domain.classes))
    if missing:
        raise ValueError(f"classes {missing} are not in domain {domain.name!r} ({domain.classes})")
    keep = torch.isin(domain.labels, torch.tensor(classes))
    sub = domain.subset(keep, f"{domain.name}[{','.join(map(str, classes))}]")
    if not relabel:
        return sub
    lookup = torch.full((max(domain.classes) + 1,), -1, dtype=torch.int64)
    lookup[torch.tensor(classes)] = torch.arange(len(classes))
    return Domain(sub.images, lookup[sub.labels], sub.name)


def stratified_indices(
    labels: Tensor, n_per_class: int | float, seed: int | torch.Generator,
    keep_rest: bool = True, what: str = "the data",
) -> tuple[Tensor, Tensor]:
    """Draw ``n_per_class`` items of every class (a float in (0, 1): that fraction of each
    class, at least one); return the (drawn, rest) indices, each sorted.

    ``labels`` may hold -1 for unlabelled items, which are never drawn and go to the rest.
    With ``keep_rest`` every class must have more items than are drawn. The draw is a
    function of the seed alone.

    Examples
    --------
    >>> drawn, rest = stratified_indices(torch.tensor([0, 0, 1, 1, 1, -1]), 1, seed=0)
    >>> len(drawn), len(rest)
    (2, 4)
    """
    labels = torch.as_tensor(labels, dtype=torch.int64).flatten()
    fraction = isinstance(n_per_class, float)
    if fraction and not 0 < n_per_class < 1:
        raise ValueError(f"a fraction per class must be in (0, 1); got {n_per_class}")
    if not fraction:
        _check_count(n_per_class, "n_per_class", 0)
    gen = _generator(seed)
    chosen = []
    for c in torch.unique(labels[labels >= 0]).tolist():
        idx = torch.nonzero(labels == c).flatten()
        n = max(1, round(n_per_class * len(idx))) if fraction else int(n_per_class)
        if len(idx) < n + int(keep_rest):
            need = f"more than {n} to leave a rest" if keep_rest else f"at least {n}"
            raise ValueError(f"class {c} of {what} has {len(idx)} items; need {need}")
        chosen.append(idx[torch.randperm(len(idx), generator=gen)[:n]])
    mask = torch.zeros(len(labels), dtype=torch.bool)
    if chosen:
        mask[torch.cat(chosen)] = True
    return torch.nonzero(mask).flatten(), torch.nonzero(~mask).flatten()


def stratified_split(
    domain: Domain, n_per_class: int, seed: int | torch.Generator
) -> tuple[Domain, Domain]:
    """Draw ``n_per_class`` images of every class; return (drawn, rest).

    Parameters
    ----------
    domain : Domain
    n_per_class : int
        Images drawn per class; every class must have more than this many.
    seed : int or torch.Generator
        The draw is a function of the seed alone (no global random state).

    Examples
    --------
    >>> from transferkit.data import load_digits
    >>> drawn, rest = stratified_split(load_digits(), 3, seed=0)
    >>> len(drawn), torch.bincount(drawn.labels).tolist()[:3], len(rest)
    (30, [3, 3, 3], 1767)
    """
    domain = _check_domain(domain, "stratified_split")
    _check_count(n_per_class, "n_per_class", 0)
    drawn, _ = stratified_indices(domain.labels, n_per_class, seed, what=repr(domain.name))
    mask = torch.zeros(len(domain), dtype=torch.bool)
    mask[drawn] = True
    return domain.subset(mask), domain.subset(~mask)


def split_images(
    dataset: Any, n_per_class: int | float, seed: int | torch.Generator,
    keep_rest: bool = True,
) -> tuple[Any, Any]:
    """:func:`stratified_indices` on an image dataset (:mod:`transferkit.data.folder`):
    ``(drawn, rest)`` subsets with the dataset's classes. ``k_per_class`` sampling is
    ``split_images(ds, k, seed, keep_rest=False)[0]``.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from transferkit.data.folder import open_images
    >>> with tempfile.TemporaryDirectory() as d:
    ...     images, labels = np.zeros((10, 1, 4, 4), np.uint8), [0] * 5 + [1] * 5
    ...     np.savez(f"{d}/set.npz", images=images, labels=labels)
    ...     val, train = split_images(open_images(f"{d}/set.npz"), 0.2, seed=0)  # 20% per class
    ...     len(val), len(train)
    (2, 8)
    """
    drawn, rest = stratified_indices(dataset.targets, n_per_class, seed, keep_rest,
                                     what=getattr(dataset, "source", "the dataset"))
    return dataset.subset(drawn), dataset.subset(rest)


def few_shot_split(domain: Domain, k: int, seed: int | torch.Generator) -> tuple[Domain, Domain]:
    """k labelled images per class for training; all the rest is the test set.

    Examples
    --------
    >>> from transferkit.data import load_digits
    >>> train, test = few_shot_split(load_digits(), k=3, seed=0)
    >>> len(train), len(test)
    (30, 1767)
    """
    _check_domain(domain, "few_shot_split")
    _check_count(k, "k (labelled images per class)", 1)
    return stratified_split(domain, k, seed)
