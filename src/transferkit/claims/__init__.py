"""Claims: each paper's central claim as a recipe, and the runner that judges it.

Importing this package does not import the recipes; :func:`list_claims` and
:func:`get_claim` load them on first use.
"""

from .base import Claim, Comparison, SeedResult, get_claim, list_claims, register_claim

__all__ = ["Claim", "Comparison", "SeedResult", "get_claim", "list_claims", "register_claim"]
