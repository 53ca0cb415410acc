"""transferkit: transfer and multi-task learning when labelled data is scarce or shifted.

Importing :mod:`transferkit` is cheap: it pulls in no recipe, no command-line code, no
plotting library and no optional dependency. Import the pieces you need::

    from transferkit import data, nets, train, finetune
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
