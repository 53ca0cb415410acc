"""Domain-adaptation objectives: MMD, CORAL, DANN and MSTN, and their registry.

Every objective is an ``nn.Module`` called as
``objective(source, target, source_labels=None, target_logits=None, coeff=1.0)`` on
features of shape ``(n_source, d)`` and ``(n_target, d)`` from any feature extractor
(``source_labels``: int64 ``(n_source,)``; ``target_logits``: ``(n_target, n_classes)``;
``coeff``: the adaptation weight lambda of the current step, see
:func:`~transferkit.adaptation.grl_lambda`). Discrepancies (MMD, CORAL) return a scalar
tensor; adversarial objectives (DANN, MSTN) return a NamedTuple whose first field
``loss`` is the scalar to add to the task loss and whose other fields are diagnostics.
:func:`adaptation_loss` takes the scalar from either form. Nothing is stashed on the
module except MSTN's moving centroids, which are buffers (like batch-norm statistics).

Conventions shared by all objectives, relied upon by
:func:`transferkit.testing.check_adaptation_objective`: the value is about 0 when the two
feature sets are equal and positive under a domain shift (for adversarial objectives:
once the discriminator has been trained by descending on the returned loss), and the
gradient of ``loss`` reaches both feature sets.

Under ``torch.distributed`` (:mod:`transferkit.distributed`) DANN's loss is a mean over the
rows, so the averaged gradients are those of the global batch; MSTN's batch centroids are
the global batch's (per-class sums and counts summed over the ranks), so its centroids,
semantic loss and gradients match one process with the whole batch; MMD and CORAL are
computed on each rank's shard, an estimate of the same discrepancy from fewer pairs.

One module per objective (``_mmd``, ``_coral``, ``_dann``, ``_mstn``) on a small base
(``_base``: :class:`AdaptationObjective`, the input checks and the registry); each module
registers its objective. Import them from here or from :mod:`transferkit.adaptation`.
"""

from ._base import (
    ADAPTATIONS,
    AdaptationObjective,
    adaptation_loss,
    create_adaptation,
    list_adaptations,
    register_adaptation,
)
from ._coral import CORAL, coral
from ._dann import DANN, DANNOutput
from ._mmd import MMD, gaussian_kernel, mmd2
from ._mstn import MSTN, MSTNOutput, batch_centroids, update_centroids

__all__ = ["ADAPTATIONS", "CORAL", "DANN", "DANNOutput", "MMD", "MSTN", "MSTNOutput",
           "AdaptationObjective", "adaptation_loss", "batch_centroids", "coral",
           "create_adaptation", "gaussian_kernel", "list_adaptations", "mmd2",
           "register_adaptation", "update_centroids"]
