"""Small backbones with a ``features`` / ``head`` split, and a registry of them."""

from .base import SplitNet, create_backbone, list_backbones, register_backbone, replace_head
from .image import MLP, LeNet

__all__ = [
    "MLP",
    "LeNet",
    "SplitNet",
    "create_backbone",
    "list_backbones",
    "register_backbone",
    "replace_head",
]
from .pretrained import (  # noqa: E402
    InputSpec,
    MissingExtraError,
    efficientnet_lite0,
    from_checkpoint,
    image_backbones,
    load_state_file,
    mobilenet_v2,
)

__all__ += ["InputSpec", "MissingExtraError", "efficientnet_lite0", "from_checkpoint",
            "image_backbones", "load_state_file", "mobilenet_v2"]
from .text import (  # noqa: E402
    TextNet,
    TextSpec,
    hf_encoder,
    minilm_l6,
    spec_from_dict,
    text_backbones,
)

__all__ += ["TextNet", "TextSpec", "hf_encoder", "minilm_l6", "spec_from_dict",
            "text_backbones"]
