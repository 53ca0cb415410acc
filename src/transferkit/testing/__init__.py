"""Property checks shipped with transferkit, run by its tests over every registered method.

A method you register can be checked in one line, e.g.::

    from transferkit.testing import check_weighting
    check_weighting("my-weighting")

- :func:`check_weighting`: a loss weighting (:mod:`transferkit.multitask`);
- :func:`check_adaptation_objective`: a domain-adaptation objective
  (:mod:`transferkit.adaptation`);
- :func:`check_label_shift_estimator`: a label-shift estimator
  (:mod:`transferkit.labelshift`), on data from :func:`synthetic_label_shift`;
- :func:`synthetic_transfer_pair`: a toy transfer pair for examples and for tests of
  one's own transfer algorithms (a toy claim: :func:`transferkit.claims.demo.demo_claim`).
"""

from .adaptation import check_adaptation_objective
from .examples import synthetic_transfer_pair
from .labelshift import check_label_shift_estimator, synthetic_label_shift
from .weighting import check_weighting

__all__ = ["check_adaptation_objective", "check_label_shift_estimator", "check_weighting",
           "synthetic_label_shift", "synthetic_transfer_pair"]
