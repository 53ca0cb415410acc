"""The user's jobs on the user's files: library functions first, CLI verbs second.

Each workflow reads and validates its inputs (raising :class:`InputError` with what was
expected and what was given), calls the pieces, and writes its outputs atomically.
"""

from .dsmt import DSMTModel, DSMTResult, fit_dsmt, train_dsmt
from .labelshift import InputError, LabelShiftReport, correct_label_shift, run_labelshift

__all__ = ["DSMTModel", "DSMTResult", "InputError", "LabelShiftReport", "correct_label_shift",
           "fit_dsmt", "run_labelshift", "train_dsmt"]
