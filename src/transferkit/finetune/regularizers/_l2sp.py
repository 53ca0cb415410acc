"""L2-SP: the squared distance to the starting point (Li et al., ICML 2018)."""

from __future__ import annotations

from ._base import FinetuneRegularizer, register_regularizer


@register_regularizer("l2sp")
class L2SP(FinetuneRegularizer):
    """L2-SP: L2 towards the starting point (Li, Grandvalet, Davoine, ICML 2018, https://arxiv.org/abs/1802.01483).

    ``Omega(w) = alpha/2 ||w_S - w0||^2 + beta/2 ||w_new||^2``, where ``w_S`` are the
    penalised weights (conv/linear ``weight``, see :func:`penalized_parameters`) that exist
    in the source model, ``w0`` their pretrained values (cloned at construction) and
    ``w_new`` the weights of the new layers. Add it to the mean cross-entropy; train with
    SGD + momentum and no optimiser weight decay. The paper's defaults are alpha = 0.1,
    beta = 0.01.

    Parameters
    ----------
    model : nn.Module
        The model to fine-tune, already carrying the pretrained weights and its new layers.
    alpha : float
        Strength of the pull towards the starting point (pretrained weights).
    beta : float
        Weight decay of the new weights.
    source : nn.Module or state dict, optional
        The pretrained model (or its ``state_dict()``): its values are the starting point,
        and penalised parameters absent from it are new. Without it the starting point is
        the model's weights at construction.
    new : list of str, optional
        Module or parameter names (prefixes) of the new layers, e.g. ``["head"]`` or
        ``["4"]`` for the last layer of an ``nn.Sequential``; needed when the new layer has
        the same name as a source layer. At least one of ``source`` and ``new`` is required
        (``new=[]`` says there is no new layer).
    params : list of str, optional
        Parameter names to penalise instead of the default conv/linear weights.

    Attributes
    ----------
    pretrained_names, new_names : list of str
        The penalised parameters of each kind.

    Examples
    --------
    Fine-tune your own pretrained model on your own tensors:

    >>> import torch
    >>> from torch import nn
    >>> from transferkit.finetune import L2SP
    >>> from transferkit.train import Stream, classification_step, fit, seeded
    >>> with seeded(0):
    ...     net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))  # "pretrained"
    ...     net[2] = nn.Linear(16, 3)                                          # new head
    >>> g = torch.Generator().manual_seed(0)  # the example's data do not hang on global state
    >>> x, y = torch.randn(60, 8, generator=g), torch.randint(0, 3, (60,), generator=g)
    >>> reg = L2SP(net, alpha=0.1, beta=0.01, new=["2"])
    >>> reg.pretrained_names, reg.new_names
    (['0.weight'], ['2.weight'])
    >>> bool(reg() > 0)  # at the start only the new head's weight decay is non-zero
    True
    >>> opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)  # no weight decay
    >>> step = classification_step(regularizer=reg)  # cross-entropy + penalty
    >>> hist = fit(net, step, {"train": Stream(x, y, batch_size=20)}, opt, max_steps=30, seed=0)
    >>> hist.last("loss/ce") < hist.series("loss/ce")[1][0]
    True
    >>> torch.equal(reg.start_point()["0.weight"], net[0].weight)  # the start is a copy
    False
    """
