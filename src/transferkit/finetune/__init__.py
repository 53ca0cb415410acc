"""Fine-tuning: freezing, per-group learning rates (and, with issue 3, the L2-SP family)."""

from .freezing import freeze, param_groups, trainable, unfreeze

__all__ = ["freeze", "param_groups", "trainable", "unfreeze"]
