"""MMD: the multi-kernel maximum mean discrepancy of DAN (Long et al., ICML 2015)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._base import AdaptationObjective, _check_features, register_adaptation


def _sq_distances(z: Tensor) -> Tensor:
    sq = (z * z).sum(dim=1)
    return (sq[:, None] + sq[None, :] - 2.0 * (z @ z.T)).clamp_min(0.0)


def gaussian_kernel(
    z: Tensor, kernel_mul: float = 2.0, kernel_num: int = 5, bandwidth: float | None = None
) -> Tensor:
    """The (n, n) sum of ``kernel_num`` Gaussian kernels between the rows of ``z``.

    Bandwidths (squared lengths) are ``bandwidth * kernel_mul^k`` for k centred on 0;
    without ``bandwidth`` the mean pairwise squared distance of ``z`` (detached). With
    ``kernel_num=1`` it is the single Gaussian kernel ``exp(-||z_i - z_j||^2 / bandwidth)``.

    Examples
    --------
    >>> import torch
    >>> k = gaussian_kernel(torch.tensor([[0.0], [1.0]]), kernel_num=1, bandwidth=1.0)
    >>> [round(v, 4) for v in k.flatten().tolist()]
    [1.0, 0.3679, 0.3679, 1.0]
    """
    if kernel_mul <= 1.0:
        raise ValueError(f"kernel_mul must be > 1; got {kernel_mul}")
    if int(kernel_num) < 1:
        raise ValueError(f"kernel_num must be >= 1; got {kernel_num}")
    d2 = _sq_distances(z)
    if bandwidth is None:
        total = len(z)
        base = d2.detach().sum() / max(total * total - total, 1)
        base = base.clamp_min(torch.finfo(z.dtype).tiny)
    else:
        if bandwidth <= 0:
            raise ValueError(f"bandwidth must be > 0; got {bandwidth}")
        base = torch.as_tensor(float(bandwidth), dtype=z.dtype, device=z.device)
    first = base / kernel_mul ** (int(kernel_num) // 2)
    kernel = torch.zeros_like(d2)
    for k in range(int(kernel_num)):
        kernel = kernel + torch.exp(-d2 / (first * kernel_mul**k))
    return kernel


def mmd2(
    source: Tensor,
    target: Tensor,
    kernel_mul: float = 2.0,
    kernel_num: int = 5,
    bandwidth: float | None = None,
) -> Tensor:
    """Multi-kernel MMD^2 with Gaussian kernels.

    Long et al., DAN, ICML 2015, https://proceedings.mlr.press/v37/long15.html.

    The biased (V-statistic) estimate of the squared maximum mean discrepancy under the
    sum of ``kernel_num`` Gaussian kernels whose bandwidths are ``bandwidth`` times
    ``kernel_mul^k`` for k centred on 0. Without ``bandwidth`` the mean pairwise squared
    distance of the pooled sample is used (detached). It is >= 0 and exactly 0 for equal
    samples.

    Parameters
    ----------
    source : Tensor, shape (n_source, d)
    target : Tensor, shape (n_target, d)
    kernel_mul : float
        Ratio between successive bandwidths (> 1).
    kernel_num : int
        Number of kernels (>= 1).
    bandwidth : float, optional
        Middle bandwidth (a squared length).

    Examples
    --------
    >>> import torch
    >>> x = torch.randn(20, 3, generator=torch.Generator().manual_seed(0))
    >>> float(mmd2(x, x)) == 0.0, bool(mmd2(x, x + 1) > 0)
    (True, True)
    """
    _check_features(source, target)
    n = len(source)
    kernel = gaussian_kernel(torch.cat([source, target]), kernel_mul, kernel_num, bandwidth)
    k_ss = kernel[:n, :n].mean()
    k_tt = kernel[n:, n:].mean()
    k_st = kernel[:n, n:].mean()
    return (k_ss + k_tt - 2.0 * k_st).clamp_min(0.0)


class MMD(AdaptationObjective):
    """Multi-kernel MMD loss of DAN.

    Long et al., ICML 2015, https://proceedings.mlr.press/v37/long15.html.

    See :func:`mmd2`; returns a scalar tensor. Labels, logits and ``coeff`` are ignored
    (weight the loss in your step function).

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> s, t = torch.randn(32, 4, generator=g), torch.randn(32, 4, generator=g) + 2
    >>> bool(MMD()(s, t) > MMD()(s, s))
    True
    """

    def __init__(
        self, kernel_mul: float = 2.0, kernel_num: int = 5, bandwidth: float | None = None
    ) -> None:
        super().__init__()
        self.kernel_mul = float(kernel_mul)
        self.kernel_num = int(kernel_num)
        self.bandwidth = bandwidth

    def forward(
        self,
        source: Tensor,
        target: Tensor,
        source_labels: Tensor | None = None,
        target_logits: Tensor | None = None,
        coeff: float = 1.0,
    ) -> Tensor:
        return mmd2(source, target, self.kernel_mul, self.kernel_num, self.bandwidth)


@register_adaptation("mmd")
def _make_mmd(in_features: int, n_classes: int, **kwargs: object) -> AdaptationObjective:
    return MMD(**kwargs)  # type: ignore[arg-type]
