"""Curriculum learning by transfer (Weinshall, Cohen, Amir, ICML 2018, arXiv 1802.03796).

Difficulty scorers (:class:`TransferScorer`, :class:`ModelScorer`, :class:`ArrayScorer`),
pacing functions (:func:`exponential_pacing`, :func:`varied_exponential_pacing`,
:func:`single_step_pacing`), a class-balanced :class:`CurriculumSampler` for the training
loop's streams (with the ``random`` and ``anti`` controls), and the paper's two theorems
checked by Monte Carlo (:func:`monte_carlo_gains`).
"""

from .pacing import exponential_pacing, single_step_pacing, varied_exponential_pacing
from .sampler import ORDERS, CurriculumSampler, balanced_order
from .scoring import (
    ArrayScorer,
    DifficultyScorer,
    ModelScorer,
    TransferScorer,
    create_scorer,
    list_scorers,
    register_scorer,
)
from .theory import monte_carlo_gains, one_step_gain

__all__ = [
    "ORDERS",
    "ArrayScorer",
    "CurriculumSampler",
    "DifficultyScorer",
    "ModelScorer",
    "TransferScorer",
    "balanced_order",
    "create_scorer",
    "list_scorers",
    "exponential_pacing",
    "monte_carlo_gains",
    "one_step_gain",
    "register_scorer",
    "single_step_pacing",
    "varied_exponential_pacing",
]
