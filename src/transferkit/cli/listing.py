"""``transferkit list``: the registered claims."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("list", help="list the claims that `reproduce` can run")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..claims import get_claim, list_claims

    names = list_claims()
    width = max((len(n) for n in names), default=0)
    for name in names:
        claim = get_claim(name)
        print(f"{name.ljust(width)}  {claim.statement}")
    return 0
