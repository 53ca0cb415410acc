"""Claims: each paper's central claim as a recipe, and the runner that judges it.

Importing this package does not import the recipes; :func:`list_claims` and
:func:`create_claim` load them on first use. :func:`reproduce` runs claims, writes their
JSON and the report (what ``transferkit reproduce`` calls).
"""

from .base import (
    Bound,
    Claim,
    Comparison,
    NonInferiority,
    SeedResult,
    create_claim,
    get_claim,
    list_claims,
    register_claim,
)
from .orchestration import ReproduceResult, reproduce

__all__ = ["Bound", "Claim", "Comparison", "NonInferiority", "ReproduceResult", "SeedResult",
           "create_claim", "get_claim", "list_claims", "register_claim", "reproduce"]
