"""The user's jobs on the user's files: library functions first, CLI verbs second.

Each workflow reads and validates its inputs (raising :class:`InputError` with what was
expected and what was given), calls the pieces, and writes its outputs atomically.
"""

from .adapt import AdaptOptions, AdaptResult, run_adapt
from .dsmt import DSMTModel, DSMTResult, fit_dsmt, train_dsmt
from .finetune import FinetuneOptions, FinetuneResult, run_finetune, run_predict
from .images import load_model
from .labelshift import InputError, LabelShiftReport, correct_label_shift, run_labelshift
from .multitask import MultitaskOptions, MultitaskResult, run_multitask

__all__ = ["AdaptOptions", "AdaptResult", "DSMTModel", "DSMTResult", "FinetuneOptions",
           "FinetuneResult", "InputError", "LabelShiftReport", "MultitaskOptions",
           "MultitaskResult", "correct_label_shift", "fit_dsmt", "load_model", "run_adapt",
           "run_finetune", "run_labelshift", "run_multitask", "run_predict", "train_dsmt"]
