"""``transferkit list``: the registered claims."""

from __future__ import annotations

import argparse
import sys
from typing import Any

HELP = {"list": "list the claims that `reproduce` can run, each with the verdict of its "
                "recorded full run"}


def add_parser(sub: Any) -> None:
    p = sub.add_parser("list", help=HELP["list"])
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..claims import create_claim, list_claims
    from ..claims.base import BROKEN
    from ..claims.records import record_summary
    from ..claims.report import record_line

    names = list_claims()
    width = max((len(n) for n in names), default=0)
    for name in names:
        claim = create_claim(name)
        print(f"{name.ljust(width)}  {claim.statement}")
        print(f"{'':{width}}  {record_line(record_summary(name))}")
    for module, error in BROKEN.items():
        print(f"transferkit: warning: recipe {module!r} failed to load: {error}", file=sys.stderr)
    return 0
