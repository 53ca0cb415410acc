"""CORAL: the distance of the feature covariances (Sun and Saenko, ECCV 2016 workshops)."""

from __future__ import annotations

from torch import Tensor

from ._base import AdaptationObjective, _check_features, register_adaptation


def coral(source: Tensor, target: Tensor) -> Tensor:
    """Deep CORAL loss ||C_s - C_t||_F^2 / (4 d^2).

    Sun & Saenko, ECCV-W 2016, https://arxiv.org/abs/1607.01719.

    ``C_s``, ``C_t`` are the unbiased feature covariances of each domain; each needs at
    least two rows.

    Examples
    --------
    >>> import torch
    >>> x = torch.randn(20, 3, generator=torch.Generator().manual_seed(0))
    >>> float(coral(x, x)) == 0.0, bool(coral(x, 3 * x) > 0)
    (True, True)
    """
    _check_features(source, target, min_rows=2)
    d = source.shape[1]

    def cov(x: Tensor) -> Tensor:
        xc = x - x.mean(dim=0, keepdim=True)
        return xc.T @ xc / (len(x) - 1)

    return ((cov(source) - cov(target)) ** 2).sum() / (4.0 * d * d)


class CORAL(AdaptationObjective):
    """Deep CORAL loss (Sun & Saenko, ECCV-W 2016, https://arxiv.org/abs/1607.01719).

    See :func:`coral`; returns a scalar tensor. Labels, logits and ``coeff`` are ignored.
    CORAL only sees second moments: a pure shift of the mean leaves it at 0.

    Examples
    --------
    >>> import torch
    >>> x = torch.randn(16, 4, generator=torch.Generator().manual_seed(1))
    >>> bool(CORAL()(x, 2 * x) > 0)
    True
    """

    def forward(
        self,
        source: Tensor,
        target: Tensor,
        source_labels: Tensor | None = None,
        target_logits: Tensor | None = None,
        coeff: float = 1.0,
    ) -> Tensor:
        return coral(source, target)


@register_adaptation("coral")
def _make_coral(in_features: int, n_classes: int, **kwargs: object) -> AdaptationObjective:
    return CORAL(**kwargs)
