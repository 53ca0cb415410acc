"""The labelled-pool split shared by the recipes that draw a few labels per class."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def per_class_parts(y: Tensor, counts: Sequence[int], seed: int) -> list[Tensor]:
    """Row indices: ``counts[0]`` rows of every class, then ``counts[1]`` more, ..., and
    last every row not drawn (the test set).

    Per class (in class order) the rows are shuffled with one generator seeded by ``seed``
    and cut into consecutive parts, so each part is class-balanced, the parts are disjoint,
    and only the drawn pool feeds the labelled parts.
    """
    g = torch.Generator().manual_seed(seed)
    parts: list[list[Tensor]] = [[] for _ in counts]
    for c in range(int(y.max()) + 1):
        rows = torch.nonzero(y == c).flatten()
        rows = rows[torch.randperm(len(rows), generator=g)]
        start = 0
        for i, n in enumerate(counts):
            parts[i].append(rows[start: start + n])
            start += n
    drawn = [torch.cat(p) for p in parts]
    rest = torch.ones(len(y), dtype=torch.bool)
    for d in drawn:
        rest[d] = False
    return [*drawn, torch.nonzero(rest).flatten()]
