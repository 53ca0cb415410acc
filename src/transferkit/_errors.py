"""One way to turn a user model's shape error into a message about the user's input."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["shape_errors"]


@contextmanager
def shape_errors(what: str) -> Iterator[None]:
    """Re-raise a ``RuntimeError`` from the block (a model or loss that cannot take the
    shapes it was given) as one ``ValueError``: ``what``, then torch's first line. Running
    out of memory is not the input's shape and passes through.

    Examples
    --------
    >>> try:
    ...     with shape_errors("the model cannot take input of shape (2, 5)"):
    ...         torch.nn.Linear(3, 1)(torch.zeros(2, 5))
    ... except ValueError as err:
    ...     print(str(err)[:58])
    the model cannot take input of shape (2, 5): mat1 and mat2
    """
    try:
        yield
    except RuntimeError as err:
        if isinstance(err, torch.OutOfMemoryError):
            raise
        raise ValueError(f"{what}: {str(err).splitlines()[0]}") from err
