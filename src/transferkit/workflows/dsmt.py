"""DSMT-Nets on the user's windows: :func:`train_dsmt` and :func:`fit_dsmt` of
:mod:`transferkit.multitask.dsmt_fit`, re-exported where the user's jobs live."""

from ..multitask.dsmt_fit import DSMTModel, DSMTResult, fit_dsmt, train_dsmt

__all__ = ["DSMTModel", "DSMTResult", "fit_dsmt", "train_dsmt"]
