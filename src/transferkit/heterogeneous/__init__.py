"""Heterogeneous model reuse: carry a model across feature spaces (ReForm)."""

from .reform import (
    LAM_GRID,
    TRANSPORTS,
    ReForm,
    column_statistics,
    feature_cost,
    fit_biased,
    grid_coordinates,
    learn_metric,
    select_lam,
    transport_model,
)

__all__ = ["LAM_GRID", "TRANSPORTS", "ReForm", "column_statistics", "feature_cost",
           "fit_biased", "grid_coordinates", "learn_metric", "select_lam", "transport_model"]
