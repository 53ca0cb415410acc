"""One module per claim; each registers its :class:`~transferkit.claims.base.Claim` at import.

Modules whose names start with ``_`` hold helpers shared by several recipes.
"""
