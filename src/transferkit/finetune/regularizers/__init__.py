"""The L2-SP family of fine-tuning regularisers (Li, Grandvalet, Davoine, ICML 2018).

Li, Grandvalet, Davoine, "Explicit Inductive Bias for Transfer Learning with Convolutional
Networks", ICML 2018, https://arxiv.org/abs/1802.01483.

Fine-tuning starts from pretrained weights ``w0``; these penalties keep the weights that
existed in the source model (the *pretrained* weights ``w_S``) close to that starting
point (SP), while the weights of newly added layers (``w_new``, e.g. a fresh classifier
head) get plain weight decay towards 0:

=================  ================================================================
``L2``             alpha/2 ||w_S||^2                          + beta/2 ||w_new||^2
``L2SP``           alpha/2 ||w_S - w0||^2                     + beta/2 ||w_new||^2
``L2SPFisher``     alpha/2 sum_j F_j (w_j - w0_j)^2           + beta/2 ||w_new||^2
``L1SP``           alpha   ||w_S - w0||_1                     + beta/2 ||w_new||^2
``GroupLassoSP``   alpha   sum_g sqrt(n_g) ||w_g - w0_g||_2   + beta/2 ||w_new||^2
=================  ================================================================

Conventions, taken from the authors' public TensorFlow code
(``holyseven/TransferLearningClassification``, ``model/network_base.py``):

- **which parameters count**: the ``weight`` of every ``nn.Linear``, ``nn.Conv1d``,
  ``nn.Conv2d`` and ``nn.Conv3d`` (the code penalises variables named ``weights``); no
  biases, no normalisation parameters (BatchNorm/LayerNorm scale and shift), no embeddings.
  :func:`penalized_parameters` lists them; pass ``params=`` to choose others explicitly.
- **constants**: the squared penalties carry a factor 1/2 (``tf.nn.l2_loss``); L1-SP and
  Group-Lasso-SP do not. The penalty is *added* to the mean cross-entropy of the batch.
- **Group-Lasso-SP groups** are the output units: one group per output channel of a
  convolution (all ``c_in * k_h * k_w`` weights that produce it) and one per output unit
  (row) of a linear layer, each weighted by ``sqrt(n_g)`` with ``n_g`` the group size,
  i.e. ``sqrt(k_h * k_w * c_in)`` (``sqrt(in_features)`` for a linear layer). The public
  code sums over the ``(k_h, k_w, c_in)`` axes of each TensorFlow kernel and multiplies by
  ``sqrt(k_h * k_w * c_in)``; it only handles 4-D conv kernels (a ResNet has no other
  pretrained weight), so the linear-layer rows are our extension. It adds 1e-16 under the
  square root; here the value is exact (0 at the start point) and the gradient of a group
  sitting exactly at its start point is 0 (a subgradient).
- **new versus pretrained**: a penalised parameter is *new* when its name matches one of
  ``new`` (a module or parameter name, matched as a prefix at ``.`` boundaries) or, when a
  ``source`` state dict is given, when the source has no entry of that name. Everything
  else is pretrained; its start point is the source's value (or the model's current value
  when no source is given), **cloned** at construction so later updates of the model or of
  the source never move it. A pretrained parameter whose shape differs from its start
  point raises a ``ValueError`` naming it.
- the optimiser must not add its own weight decay on top (``weight_decay=0``); the paper
  uses SGD with momentum 0.9.

The penalties are computed with multi-tensor (``torch._foreach_*``) kernels inside one
autograd node with a closed-form backward, so their cost does not grow with the number
of weight tensors the way a per-tensor Python loop does (``benchmarks/bench_regularizers.py``).

One module per penalty (``_l2``, ``_l2sp``, ``_l2sp_fisher``, ``_l1sp``,
``_group_lasso_sp``) on a small base (``_base``: :class:`FinetuneRegularizer` and the
registry), with the Fisher (``_fisher``) and the loop's update (``_update``) beside them;
each module registers its penalty. Import them from here or from
:mod:`transferkit.finetune`.
"""

from ._base import (
    REGULARIZERS,
    WEIGHT_MODULES,
    FinetuneRegularizer,
    create_regularizer,
    list_regularizers,
    penalized_parameters,
    register_regularizer,
    regularizer_class,
)
from ._fisher import fisher_diagonal
from ._group_lasso_sp import GroupLassoSP
from ._l1sp import L1SP
from ._l2 import L2
from ._l2sp import L2SP
from ._l2sp_fisher import L2SPFisher
from ._update import PenaltyUpdate

__all__ = ["L1SP", "L2", "L2SP", "REGULARIZERS", "WEIGHT_MODULES", "FinetuneRegularizer",
           "GroupLassoSP", "L2SPFisher", "PenaltyUpdate", "create_regularizer",
           "fisher_diagonal", "list_regularizers", "penalized_parameters",
           "register_regularizer", "regularizer_class"]
