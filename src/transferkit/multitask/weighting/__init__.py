"""Loss-weighting strategies for multi-task learning behind one small base class.

Every strategy is a :class:`Weighting`: ``forward(losses) -> weights`` (shape ``(T,)``),
an optional :meth:`Weighting.update` hook for strategies with state, and
:meth:`Weighting.combine` that the training loop calls as its ``combiner``: called with a
dict of named losses, a strategy returns the weighted sum and updates its own state (its
own optimiser is created once, in ``__init__``; its state travels in ``state_dict``). The
loop never asks which strategy it holds.

Strategies: ``equal``; ``uncertainty`` (Kendall, Gal, Cipolla, CVPR 2018,
https://arxiv.org/abs/1705.07115); ``dwa`` (Liu, Johns, Davison, CVPR 2019,
https://arxiv.org/abs/1803.10704); ``gradnorm`` (Chen, Badrinarayanan, Lee, Rabinovich,
ICML 2018, https://arxiv.org/abs/1711.02257).

Under ``torch.distributed`` (see :mod:`transferkit.distributed`) the strategies learn from
the task losses averaged over the ranks, and GradNorm from the per-task gradients of the
shared layer averaged over the ranks before their norms are taken, so every rank holds the
same weights and, with equal shards, the weights one process would learn from the whole
batch. Uncertainty weighting's ``log_vars`` stay in step the same way.

One module per strategy (``_equal``, ``_uncertainty``, ``_dwa``, ``_gradnorm``) on a small
base (``_base``: :class:`Weighting`, the shared helpers and the registry); each module
registers its strategy. Import them from here or from :mod:`transferkit.multitask`.
"""

from ._base import WEIGHTINGS, Weighting, create_weighting, list_weightings, register_weighting
from ._dwa import DWA
from ._equal import EqualWeighting
from ._gradnorm import GradNorm
from ._uncertainty import UncertaintyWeighting

__all__ = ["DWA", "WEIGHTINGS", "EqualWeighting", "GradNorm", "UncertaintyWeighting",
           "Weighting", "create_weighting", "list_weightings", "register_weighting"]
