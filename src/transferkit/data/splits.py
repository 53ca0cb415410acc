"""Class subsets and seeded, stratified few-shot splits."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .domain import Domain


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
    """
    domain = _check_domain(domain, "stratified_split")
    _check_count(n_per_class, "n_per_class", 0)
    gen = _generator(seed)
    chosen = []
    for c in domain.classes:
        idx = torch.nonzero(domain.labels == c).flatten()
        if len(idx) <= n_per_class:
            raise ValueError(
                f"class {c} of {domain.name!r} has {len(idx)} images; "
                f"need more than {n_per_class} to leave a rest"
            )
        chosen.append(idx[torch.randperm(len(idx), generator=gen)[:n_per_class]])
    mask = torch.zeros(len(domain), dtype=torch.bool)
    if chosen:
        mask[torch.cat(chosen)] = True
    return domain.subset(mask), domain.subset(~mask)


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
