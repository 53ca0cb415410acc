"""DSMT-Nets: distantly supervised multitask networks for multivariate time series.

Schwab et al., "Not to Cry Wolf: Distantly Supervised Multitask Learning in Critical
Care", ICML 2018 (arXiv 1802.05027); the architecture and schedule follow the authors'
public code (d909b/DSMT-Nets, ``model/model_builder.py`` and ``model/model_trainer.py``),
re-written in PyTorch:

- a **perception block** per channel group: a small 1-D ResNet whose outputs are
  concatenated with the **missing-value indicators** (the fraction of missing samples of
  each channel in the window);
- **K multitask blocks side by side**, each on that representation: Dense(units) ->
  batch normalisation -> ReLU -> highway layer (gate bias -3) -> Gaussian noise (sd 0.35,
  training only) -> linear head regressing its standardised auxiliary target (MSE,
  weight 1); the K blocks are computed as one batched matrix product;
- the **head block**: [perception output, every multitask block's highway output] ->
  Dense(2 units) -> batch normalisation -> ReLU -> highway -> one logit (sigmoid; BCE);
- ``n_aux=0`` is the supervised network, as the authors build it: one highway layer
  straight on the perception output, then the logit;
- ``aux_mode="shared"`` is the naive multitask baseline, the authors' network without
  highway blocks: Dense(units x groups) -> ReLU -> dropout carries the main logit and all
  K auxiliary outputs.

The authors' code puts batch normalisation after the Dense layer of every multitask block
and of the head whatever its ``with_bn`` flag, and trains with batches of one window; a
Keras batch-normalisation layer on a batch of one outputs its bias alone (the batch is its
own mean), so no gradient passes those layers in training. PyTorch refuses batch
normalisation on one row; ``batch_norm=False`` drops those layers for batches of one.
Their perception ResNet runs without batch normalisation (``with_bn=False``); ours keeps
it in the convolutions, where it normalises over time steps too and is defined at any
batch size.

Training: :func:`transferkit.workflows.fit_dsmt` runs the authors' schedule (burn-in,
then auxiliary and main epochs in turn, each phase with its own RMSprop, early stopping on
the validation BCE, the threshold chosen on validation) in the one training loop, with the
step functions :func:`dsmt_aux_step` and :func:`dsmt_main_step` defined here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn
from torch.nn import functional as F

from ..train.interface import Batches, StepContext

__all__ = ["ChannelScaler", "DSMTNet", "Highway", "PerceptionNet", "aux_outputs", "dsmt_aux_step",
           "dsmt_main_step", "main_logits", "predict_proba", "youden_threshold"]


class Highway(nn.Module):
    """``g * relu(W x) + (1 - g) * x`` with the gate ``g = sigmoid(G x + b)``, b = -3 at
    start (the layer starts close to the identity).

    Examples
    --------
    >>> layer = Highway(8)
    >>> layer(torch.zeros(3, 8)).shape
    torch.Size([3, 8])
    """

    def __init__(self, dim: int, gate_bias: float = -3.0, dropout: float = 0.0) -> None:
        super().__init__()
        self.transform = nn.Linear(dim, dim)
        self.gate = nn.Linear(dim, dim)
        nn.init.constant_(self.gate.bias, gate_bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        g = torch.sigmoid(self.gate(x))
        return g * self.dropout(F.relu(self.transform(x))) + (1 - g) * x


class _BatchedHighway(nn.Module):
    """K independent highway layers applied to inputs of shape (K, n, dim)."""

    def __init__(self, k: int, dim: int, gate_bias: float = -3.0) -> None:
        super().__init__()
        bound = 1 / math.sqrt(dim)
        self.w = nn.Parameter(torch.empty(k, dim, dim).uniform_(-bound, bound))
        self.b = nn.Parameter(torch.empty(k, 1, dim).uniform_(-bound, bound))
        self.gw = nn.Parameter(torch.empty(k, dim, dim).uniform_(-bound, bound))
        self.gb = nn.Parameter(torch.full((k, 1, dim), float(gate_bias)))

    def forward(self, x: Tensor) -> Tensor:
        g = torch.sigmoid(torch.baddbmm(self.gb, x, self.gw))
        return g * F.relu(torch.baddbmm(self.b, x, self.w)) + (1 - g) * x


class _ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(c_in, c_out, 5, stride, 2, bias=False)
        self.bn1 = nn.BatchNorm1d(c_out)
        self.conv2 = nn.Conv1d(c_out, c_out, 5, 1, 2, bias=False)
        self.bn2 = nn.BatchNorm1d(c_out)
        self.skip = (nn.Identity() if stride == 1 and c_in == c_out
                     else nn.Sequential(nn.Conv1d(c_in, c_out, 1, stride, bias=False),
                                        nn.BatchNorm1d(c_out)))

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(h)) + self.skip(x))


class PerceptionNet(nn.Module):
    """A small 1-D ResNet for one channel group: stem (kernel 9, stride 4) -> 3 residual
    blocks (strides 1, 2, 2) -> global average pooling -> Dense(units) -> ReLU.

    (Grouped convolutions computing every group in one call were timed 1.6x slower on
    the CPU than separate networks, so each group has its own.)

    Examples
    --------
    >>> PerceptionNet(in_channels=2, width=4, units=8)(torch.randn(5, 2, 64)).shape
    torch.Size([5, 8])
    """

    def __init__(self, in_channels: int, width: int = 16, units: int = 32) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv1d(in_channels, width, 9, 4, 4, bias=False),
                                  nn.BatchNorm1d(width), nn.ReLU())
        self.blocks = nn.Sequential(_ResBlock(width, width, 1), _ResBlock(width, 2 * width, 2),
                                    _ResBlock(2 * width, 2 * width, 2))
        self.out = nn.Linear(2 * width, units)

    def forward(self, x: Tensor) -> Tensor:
        h = self.blocks(self.stem(x)).mean(dim=2)
        return F.relu(self.out(h))


class DSMTNet(nn.Module):
    """The DSMT-Net (see the module docstring).

    Parameters
    ----------
    n_channels : int
    n_aux : int
        K auxiliary tasks (0: the supervised network).
    groups : sequence of sequences of int, optional
        Channel indices of each perception block (default: one block per channel).
    width, units : int
        ResNet width and the Dense width of the blocks (the head is 2 units wide).
    aux_mode : {"blocks", "shared"}
        K multitask blocks (DSMT-Net) or one shared layer for every output (naive MTL).
    noise : float
        Gaussian-noise sd before each auxiliary head (training only).
    dropout : float
    batch_norm : bool
        Batch normalisation after the Dense layer of each multitask block and of the head
        (the authors'); needs batches of two or more windows in training.

    Examples
    --------
    >>> net = DSMTNet(n_channels=3, n_aux=4, width=4, units=8)
    >>> x, missing = torch.randn(6, 3, 64), torch.zeros(6, 3)
    >>> main, aux = net(x, missing)
    >>> main.shape, aux.shape
    (torch.Size([6]), torch.Size([6, 4]))
    """

    def __init__(self, n_channels: int, n_aux: int, groups: Sequence[Sequence[int]] | None = None,
                 width: int = 16, units: int = 32, aux_mode: str = "blocks",
                 noise: float = 0.35, dropout: float = 0.0, batch_norm: bool = True) -> None:
        super().__init__()
        if aux_mode not in ("blocks", "shared"):
            raise ValueError(f"aux_mode must be 'blocks' or 'shared'; got {aux_mode!r}")
        if n_aux < 0:
            raise ValueError(f"n_aux must be >= 0; got {n_aux}")
        if n_channels < 1:
            raise ValueError(f"n_channels must be >= 1; got {n_channels}")
        self.groups = [list(g) for g in (groups or [[c] for c in range(n_channels)])]
        used = sorted(c for g in self.groups for c in g)
        if used != list(range(n_channels)):
            raise ValueError(f"groups must cover each of the {n_channels} channels once; got "
                             f"{self.groups}")
        self.n_aux, self.aux_mode, self.noise = int(n_aux), aux_mode, float(noise)
        self.perception = nn.ModuleList(PerceptionNet(len(g), width, units) for g in self.groups)
        d = units * len(self.groups) + n_channels
        self.d = d
        if aux_mode == "blocks" and n_aux:
            bound = 1 / math.sqrt(d)
            self.block_w = nn.Parameter(torch.empty(n_aux, d, units).uniform_(-bound, bound))
            self.block_b = nn.Parameter(torch.empty(n_aux, 1, units).uniform_(-bound, bound))
            # one normalisation per block and unit, over the batch: as K separate layers
            self.block_norm = nn.BatchNorm1d(n_aux * units) if batch_norm else None
            self.block_highway = _BatchedHighway(n_aux, units)
            self.block_out = nn.Parameter(torch.empty(n_aux, units).uniform_(
                -1 / math.sqrt(units), 1 / math.sqrt(units)))
            self.block_out_b = nn.Parameter(torch.zeros(n_aux))
            self.head: nn.Module = nn.Sequential(
                nn.Linear(d + n_aux * units, 2 * units),
                *([nn.BatchNorm1d(2 * units)] if batch_norm else []), nn.ReLU(),
                nn.Dropout(dropout), Highway(2 * units, dropout=dropout))
            top = 2 * units
        elif aux_mode == "shared" and n_aux:
            wide = units * len(self.groups)
            self.head = nn.Sequential(nn.Linear(d, wide), nn.ReLU(), nn.Dropout(dropout))
            top = wide
        else:  # the supervised network
            self.head, top = Highway(d, dropout=dropout), d
        self.main_out = nn.Linear(top, 1)
        self.shared_aux = nn.Linear(top, n_aux) if aux_mode == "shared" and n_aux else None

    def represent(self, x: Tensor, missing: Tensor) -> Tensor:
        """Perception outputs of every group, concatenated with the indicators."""
        parts = [net(x[:, g]) for net, g in zip(self.perception, self.groups, strict=True)]
        return torch.cat([*parts, missing], dim=1)

    def forward(self, x: Tensor, missing: Tensor) -> tuple[Tensor, Tensor]:
        """``(main logit (n,), auxiliary outputs (n, K))``."""
        channels = sum(len(g) for g in self.groups)
        if x.ndim != 3 or x.shape[1] != channels or missing.shape != (len(x), channels):
            raise ValueError(f"expected windows (n, {channels}, steps) and indicators "
                             f"(n, {channels}); got {tuple(x.shape)} and "
                             f"{tuple(missing.shape)}")
        z = self.represent(x, missing)
        if self.aux_mode == "blocks" and self.n_aux:
            h = torch.baddbmm(self.block_b, z.expand(self.n_aux, -1, -1), self.block_w)
            if self.block_norm is not None:  # (K, n, units) -> (n, K * units) and back
                k, n, u = h.shape
                h = self.block_norm(h.permute(1, 0, 2).reshape(n, k * u))
                h = h.reshape(n, k, u).permute(1, 0, 2)
            h = self.block_highway(F.relu(h))  # (K, n, units)
            noisy = h + self.noise * torch.randn_like(h) if self.training and self.noise else h
            aux = (noisy * self.block_out[:, None, :]).sum(-1).T + self.block_out_b
            top = self.head(torch.cat([z, h.permute(1, 0, 2).reshape(len(z), -1)], dim=1))
        else:
            top = self.head(z)
            aux = (self.shared_aux(top) if self.shared_aux is not None
                   else z.new_zeros(len(z), 0))
        return self.main_out(top).squeeze(1), aux


def dsmt_main_step(model: nn.Module, batches: Batches, ctx: StepContext) -> dict[str, Tensor]:
    """Main-task BCE on a labelled batch ``(x, missing, y)`` from stream ``"labelled"``.

    Examples
    --------
    >>> net = DSMTNet(2, 1, width=4, units=8)
    >>> y = torch.tensor([0.0, 1, 1, 0])
    >>> batch = {"labelled": (torch.randn(4, 2, 64), torch.zeros(4, 2), y)}
    >>> sorted(dsmt_main_step(net, batch, None))  # the loop passes its step context
    ['main']
    """
    x, missing, y = batches["labelled"]
    logit, _ = model(x, missing)
    return {"main": F.binary_cross_entropy_with_logits(logit, y.float())}


def dsmt_aux_step(model: nn.Module, batches: Batches, ctx: StepContext) -> dict[str, Tensor]:
    """Auxiliary MSE (mean over the K targets) on ``(x, missing, targets)`` from ``"aux"``.

    Examples
    --------
    >>> net = DSMTNet(2, 3, width=4, units=8)
    >>> batch = {"aux": (torch.randn(4, 2, 64), torch.zeros(4, 2), torch.randn(4, 3))}
    >>> sorted(dsmt_aux_step(net, batch, None))
    ['aux']
    """
    x, missing, t = batches["aux"]
    _, aux = model(x, missing)
    return {"aux": F.mse_loss(aux, t)}


@dataclass
class ChannelScaler:
    """Per-channel standardisation fitted on training windows (NaN-aware); missing samples
    become 0 after scaling.

    Examples
    --------
    >>> X = np.array([[[1.0, 3.0, np.nan]], [[5.0, 7.0, 9.0]]], dtype=np.float32)
    >>> ChannelScaler().fit(X).transform(X).round(2)
    array([[[-1.41, -0.71,  0.  ]],
    <BLANKLINE>
           [[ 0.  ,  0.71,  1.41]]], dtype=float32)
    """

    mean: NDArray[np.float32] = field(default_factory=lambda: np.zeros(0, np.float32))
    scale: NDArray[np.float32] = field(default_factory=lambda: np.ones(0, np.float32))

    def fit(self, X: NDArray[np.float32]) -> ChannelScaler:
        with np.errstate(all="ignore"):
            m = np.nanmean(X, axis=(0, 2))
            s = np.nanstd(X, axis=(0, 2))
        self.mean = np.nan_to_num(m).astype(np.float32)
        self.scale = np.where(np.isfinite(s) & (s > 0), s, 1.0).astype(np.float32)
        return self

    def transform(self, X: NDArray[np.float32]) -> NDArray[np.float32]:
        z = (X - self.mean[None, :, None]) / self.scale[None, :, None]
        return np.nan_to_num(z, nan=0.0).astype(np.float32)


def youden_threshold(y: NDArray[np.float64], p: NDArray[np.float64]) -> float:
    """The probability threshold maximising sensitivity + specificity - 1.

    Examples
    --------
    >>> youden_threshold(np.array([0, 0, 1, 1.0]), np.array([0.1, 0.4, 0.35, 0.8]))
    0.8
    """
    from sklearn.metrics import roc_curve

    if len(np.unique(y)) < 2:
        return 0.5
    fpr, tpr, thr = roc_curve(y, p)
    best = int(np.argmax(tpr - fpr))
    return float(min(1.0, thr[best]))


def main_logits(model: nn.Module, x: Tensor, missing: Tensor, batch: int = 512) -> Tensor:
    """The main task's logits for every window, computed in batches (in the model's
    current mode).

    Examples
    --------
    >>> net = DSMTNet(2, 0, width=4, units=8).eval()
    >>> main_logits(net, torch.randn(7, 2, 64), torch.zeros(7, 2), batch=3).shape
    torch.Size([7])
    """
    return torch.cat([model(x[i:i + batch], missing[i:i + batch])[0]
                      for i in range(0, len(x), batch)])


def aux_outputs(model: nn.Module, x: Tensor, missing: Tensor, batch: int = 512) -> Tensor:
    """The auxiliary outputs (n, K) for every window, in batches (in the model's current
    mode).

    Examples
    --------
    >>> net = DSMTNet(2, 3, width=4, units=8).eval()
    >>> aux_outputs(net, torch.randn(7, 2, 64), torch.zeros(7, 2), batch=3).shape
    torch.Size([7, 3])
    """
    return torch.cat([model(x[i:i + batch], missing[i:i + batch])[1]
                      for i in range(0, len(x), batch)])


def predict_proba(model: DSMTNet, x: Tensor, missing: Tensor, batch: int = 512) -> Tensor:
    """Probabilities of the positive class (eval mode, no gradients), in batches.

    Examples
    --------
    >>> p = predict_proba(DSMTNet(2, 0, width=4, units=8), torch.randn(7, 2, 64), torch.zeros(7, 2))
    >>> p.shape, bool(((p >= 0) & (p <= 1)).all())
    (torch.Size([7]), True)
    """
    from ..train.interface import evaluating

    return evaluating(model, lambda m: torch.sigmoid(main_logits(m, x, missing, batch)))
