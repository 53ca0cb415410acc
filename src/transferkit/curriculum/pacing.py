"""Pacing functions: the fraction of the (easiest-first) training data usable at a step.

Weinshall, Cohen, Amir (ICML 2018, arXiv 1802.03796) and the authors' follow-up code
(GuyHacohen/curriculum_learning) grow the usable prefix exponentially: start with
``start`` of the data, multiply by ``multiplier`` every ``step_length`` steps, up to all of
it (their defaults: 4%, x1.9, every 100 batches). Each function maps a step (batch count,
from 0) to a fraction in (0, 1], non-decreasing, reaching 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["exponential_pacing", "single_step_pacing", "varied_exponential_pacing"]


def _check(start: float, multiplier: float | None = None) -> None:
    if not 0 < start <= 1:
        raise ValueError(f"start must be a fraction in (0, 1]; got {start}")
    if multiplier is not None and not multiplier > 1:
        raise ValueError(f"multiplier must be > 1 (the usable data must grow); got {multiplier}")


def _step(step: int) -> int:
    if isinstance(step, bool) or int(step) != step or step < 0:
        raise ValueError(f"step must be an integer >= 0; got {step!r}")
    return int(step)


def exponential_pacing(step: int, start: float = 0.04, multiplier: float = 1.9,
                       step_length: int = 100) -> float:
    """Fixed exponential pacing: ``min(1, start * multiplier ** (step // step_length))``.

    Examples
    --------
    >>> [round(exponential_pacing(s), 4) for s in (0, 99, 100, 250, 600)]
    [0.04, 0.04, 0.076, 0.1444, 1.0]
    """
    _check(start, multiplier)
    if int(step_length) < 1:
        raise ValueError(f"step_length must be >= 1; got {step_length}")
    k = _step(step) // int(step_length)
    # past the last jump the fraction is 1 (and the power cannot overflow)
    if k >= math.log(1 / start) / math.log(multiplier):
        return 1.0
    return min(1.0, start * multiplier**k)


def varied_exponential_pacing(step: int, start: float = 0.04, multiplier: float = 1.9,
                              step_lengths: Sequence[int] = (100, 100, 100)) -> float:
    """Exponential pacing whose first jumps come after their own numbers of steps.

    ``step_lengths[i]`` steps are spent at the i-th fraction; after the listed lengths the
    last one repeats (the authors' "varied exponential" with a first and second jump).

    Examples
    --------
    >>> pace = [varied_exponential_pacing(s, 0.1, 2.0, (50, 200, 100))
    ...         for s in (0, 49, 50, 249, 250, 350)]
    >>> [round(v, 2) for v in pace]
    [0.1, 0.1, 0.2, 0.2, 0.4, 0.8]
    """
    _check(start, multiplier)
    lengths = [int(n) for n in step_lengths]
    if not lengths or min(lengths) < 1:
        raise ValueError(f"step_lengths must be a non-empty list of integers >= 1; got "
                         f"{list(step_lengths)}")
    s, k = _step(step), 0
    for n in lengths:
        if s < n:
            break
        s -= n
        k += 1
    else:
        k += s // lengths[-1]
    if k >= math.log(1 / start) / math.log(multiplier):
        return 1.0
    return min(1.0, start * multiplier**k)


def single_step_pacing(step: int, start: float = 0.5, step_length: int = 500) -> float:
    """``start`` of the data for the first ``step_length`` steps, then all of it.

    Examples
    --------
    >>> single_step_pacing(499), single_step_pacing(500)
    (0.5, 1.0)
    """
    _check(start)
    if int(step_length) < 1:
        raise ValueError(f"step_length must be >= 1; got {step_length}")
    return start if _step(step) < int(step_length) else 1.0
