"""Bring two domains to a shared shape.

:func:`optdigits_style` follows the recipe UCI used to make optdigits (the source of
scikit-learn's 8x8 digits): each digit is binarised, cropped to its bounding box, scaled to
32x32 and the ink is counted in non-overlapping 4x4 blocks, giving 8x8 values 0-16 (here
divided by 16). Plain pooling of a padded 28x28 MNIST digit to 8x8 keeps MNIST's margin and
thin strokes and gave chance-level transfer in a trial; this recipe makes the two
collections comparable while keeping their writers and scanners different.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .domain import Domain

__all__ = ["add_noise", "blur", "lower_resolution", "optdigits_style", "resize", "rotate"]


def resize(domain: Domain, size: int | tuple[int, int], antialias: bool = True) -> Domain:
    """Resize every image bilinearly to ``size`` (antialiased when shrinking).

    Parameters
    ----------
    domain : Domain
    size : int or (height, width)
    antialias : bool
        Low-pass filter before downsampling (avoids aliasing of thin strokes).

    Examples
    --------
    >>> from transferkit.data import load_digits
    >>> tuple(resize(load_digits(), 16).images.shape[1:])
    (1, 16, 16)
    """
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if len(hw) != 2 or min(hw) < 1:
        raise ValueError(f"size must be a positive int or (height, width); got {size!r}")
    if tuple(domain.images.shape[2:]) == hw:
        return domain
    shrinking = hw[0] < domain.images.shape[2] or hw[1] < domain.images.shape[3]
    out = F.interpolate(
        domain.images,
        size=hw,
        mode="bilinear",
        align_corners=False,
        antialias=antialias and shrinking,
    ).clamp_(0.0, 1.0)
    return Domain(out, domain.labels, f"{domain.name}@{hw[0]}x{hw[1]}")


def _crop_to_ink(img: Tensor, threshold: float) -> Tensor:
    ink = img > threshold
    rows = torch.nonzero(ink.any(dim=1)).flatten()
    cols = torch.nonzero(ink.any(dim=0)).flatten()
    if len(rows) == 0:
        return img
    return img[int(rows[0]) : int(rows[-1]) + 1, int(cols[0]) : int(cols[-1]) + 1]


def optdigits_style(domain: Domain, threshold: float = 0.5, block: int = 4) -> Domain:
    """MNIST-like images -> 8x8 ink counts, the way UCI made optdigits.

    Parameters
    ----------
    domain : Domain
        Single-channel images with ink bright on a dark background, values in [0, 1].
    threshold : float
        Ink threshold for binarising.
    block : int
        Side of the counting blocks; the 32x32 bitmap gives (32 / block)^2 cells.

    Returns
    -------
    Domain
        Images of shape (1, 32 // block, 32 // block), each cell the fraction of ink pixels
        in its block (UCI's 0-16 count divided by 16).

    Examples
    --------
    >>> from transferkit.data import load_mnist5k
    >>> small = optdigits_style(load_mnist5k())   # cropped to the ink, 4x4 block counts: 8x8
    >>> tuple(small.images.shape[1:]), float(small.images.max()) <= 1.0
    ((1, 8, 8), True)
    """
    if domain.shape[0] != 1:
        raise ValueError(f"optdigits_style needs single-channel images; got {domain.shape}")
    if 32 % block:
        raise ValueError(f"block must divide 32; got {block}")
    out = torch.empty(len(domain), 1, 32 // block, 32 // block)
    for i, img in enumerate(domain.images[:, 0]):
        crop = _crop_to_ink(img, threshold)
        big = F.interpolate(crop[None, None], size=(32, 32), mode="bilinear", align_corners=False)
        bitmap = (big > threshold).float()
        out[i] = F.avg_pool2d(bitmap, block)[0]
    side = 32 // block
    return Domain(out, domain.labels, f"{domain.name}@{side}x{side}")


def _with(domain: Domain, images: Tensor, tag: str) -> Domain:
    return Domain(images.clamp(0.0, 1.0), domain.labels, f"{domain.name}+{tag}")


def rotate(domain: Domain, degrees: float) -> Domain:
    """Rotate every image by ``degrees`` (counter-clockwise) about its centre (bilinear,
    zeros outside).

    Examples
    --------
    >>> from transferkit.data import load_digits
    >>> turned = rotate(load_digits(), 90)
    >>> turned.name, tuple(turned.images.shape) == tuple(load_digits().images.shape)
    ('digits+rot90', True)
    """
    theta = torch.tensor(float(degrees)) * torch.pi / 180
    c, s = torch.cos(theta), torch.sin(theta)
    mat = torch.tensor([[c, -s, 0.0], [s, c, 0.0]], dtype=domain.images.dtype)
    grid = F.affine_grid(mat.expand(len(domain), 2, 3), list(domain.images.shape),
                         align_corners=False)
    out = F.grid_sample(domain.images, grid, mode="bilinear", padding_mode="zeros",
                        align_corners=False)
    return _with(domain, out, f"rot{float(degrees):g}")


def blur(domain: Domain, sigma: float) -> Domain:
    """Gaussian blur with standard deviation ``sigma`` pixels (kernel of radius 3 sigma,
    reflected borders).

    Examples
    --------
    >>> from transferkit.data import load_digits
    >>> d = load_digits()
    >>> bool(blur(d, 1.0).images.std() < d.images.std())   # smoother images
    True
    """
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0; got {sigma}")
    radius = max(1, int(round(3 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=domain.images.dtype)
    k = torch.exp(-(x**2) / (2 * sigma**2))
    k = k / k.sum()
    c = domain.shape[0]
    img = F.pad(domain.images, (radius,) * 4, mode="reflect")
    img = F.conv2d(img, k.reshape(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    img = F.conv2d(img, k.reshape(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return _with(domain, img, f"blur{sigma:g}")


def add_noise(domain: Domain, std: float, seed: int | torch.Generator = 0) -> Domain:
    """Add Gaussian noise of standard deviation ``std`` (seeded), clipped to [0, 1].

    Examples
    --------
    >>> from transferkit.data import load_digits
    >>> noisy = add_noise(load_digits(), 0.1, seed=0)
    >>> float(noisy.images.min()) >= 0.0, float(noisy.images.max()) <= 1.0   # clipped to [0, 1]
    (True, True)
    """
    if not std >= 0:
        raise ValueError(f"std must be >= 0; got {std}")
    gen = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(seed)
    noise = torch.randn(domain.images.shape, generator=gen, dtype=domain.images.dtype)
    return _with(domain, domain.images + std * noise, f"noise{std:g}")


def lower_resolution(domain: Domain, factor: int) -> Domain:
    """Average ``factor`` x ``factor`` blocks and scale back up (nearest): the same image
    size with ``factor`` times fewer pixels per side of detail.

    Examples
    --------
    >>> from transferkit.data import load_mnist5k
    >>> low = lower_resolution(load_mnist5k(), 2)
    >>> tuple(low.images.shape[1:])               # the same size, half the detail
    (1, 28, 28)
    """
    factor = int(factor)
    h, w = domain.images.shape[2:]
    if factor < 1 or h % factor or w % factor:
        raise ValueError(f"factor must be a positive divisor of the image size {h}x{w}; "
                         f"got {factor}")
    small = F.avg_pool2d(domain.images, factor)
    return _with(domain, F.interpolate(small, scale_factor=factor, mode="nearest"),
                 f"lowres{factor}")
