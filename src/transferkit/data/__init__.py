"""Data: bundled digit domains, image folders, class subsets, few-shot splits and the image
corruptions (rotation, blur, noise, lower resolution) that make new domains from old.

Nothing here downloads at import. :func:`load_mnist` and :func:`load_usps` fetch the full
sets for real users on request, verify a checksum and cache them in
:func:`data_dir`.
"""

from .alarms import Windows, simulate_alarms
from .bundled import (
    FASHION_CLASSES,
    fashion_mnist_available,
    load_digits,
    load_fashion_mnist,
    load_mfeat_pixels,
    load_mnist5k,
    mfeat_available,
)
from .domain import Domain
from .download import data_dir, fetch, load_mnist, load_usps
from .folder import ImageArrays, ImageCSV, ImageFiles, ImageFolder, open_images
from .splits import (
    class_subset,
    few_shot_split,
    split_images,
    stratified_indices,
    stratified_split,
)
from .transforms import add_noise, blur, lower_resolution, optdigits_style, resize, rotate

__all__ = [
    "Domain",
    "Windows",
    "add_noise",
    "blur",
    "lower_resolution",
    "rotate",
    "simulate_alarms",
    "ImageArrays",
    "ImageCSV",
    "ImageFiles",
    "ImageFolder",
    "open_images",
    "split_images",
    "stratified_indices",
    "class_subset",
    "data_dir",
    "fetch",
    "few_shot_split",
    "FASHION_CLASSES",
    "fashion_mnist_available",
    "load_digits",
    "load_fashion_mnist",
    "load_mfeat_pixels",
    "load_mnist",
    "load_mnist5k",
    "load_usps",
    "mfeat_available",
    "optdigits_style",
    "resize",
    "stratified_split",
]
from .shift import (  # noqa: E402
    dirichlet_prior,
    knock_out_prior,
    sample_with_prior,
    shift_domain,
    tweak_one_prior,
)

__all__ += [
    "dirichlet_prior",
    "knock_out_prior",
    "sample_with_prior",
    "shift_domain",
    "tweak_one_prior",
]
