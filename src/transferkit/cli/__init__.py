"""The ``transferkit`` command: parses and dispatches only.

Each subcommand lives in its own module exposing ``HELP`` (its commands' one-line help)
and ``add_parser(subparsers)`` (which sets ``func`` on its parser) and returns an exit
status from ``func(args)``. Bad input is one line on stderr (``transferkit: error: ...``)
and exit status 2, never a traceback.

Only the command being run builds its full parser: the others are listed from ``HELP``,
so ``transferkit --help`` imports neither torch nor a registry (their options, such as the
registered methods offered as choices, need them).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Sequence
from typing import Any, NoReturn

from .. import __version__

COMMAND_MODULES = ("listing", "reproduce", "info", "labelshift", "finetune", "adapt",
                   "multitask")


class CLIError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"transferkit: error: {message} (see `{self.prog} --help`)\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``transferkit`` parser; with ``command``, only that command's options are built
    (the others are listed by name and help), without, every command's."""
    parser = _Parser(
        prog="transferkit",
        description="Transfer and multi-task learning when labelled data is scarce or shifted.",
    )
    parser.add_argument("--version", action="version", version=f"transferkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                continue  # a command not built yet
            raise
        if command is None or command in module.HELP:
            module.add_parser(sub)
        else:
            for name, text in module.HELP.items():
                sub.add_parser(name, help=text, add_help=False)
    return parser


def _command(argv: Sequence[str]) -> str:
    """The command ``argv`` names (its first word that is not an option), or ``""``."""
    return next((a for a in argv if not a.startswith("-")), "")


def _show_warning(message: Warning | str, category: type[Warning], filename: str,
                  lineno: int, file: Any = None, line: str | None = None) -> None:
    """Warnings as a user of the command reads them: one line, no source location."""
    print(f"transferkit: warning: {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``transferkit`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command(argv))
    args = parser.parse_args(argv)
    try:
        from ..distributed import group_line, init_from_env, rank_and_world_size

        if init_from_env() and rank_and_world_size()[0] == 0:  # joined torchrun's group
            print(f"transferkit: {group_line(getattr(args, 'batch_size', None))}",
                  file=sys.stderr, flush=True)
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return int(args.func(args))
    except CLIError as exc:
        print(f"transferkit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("transferkit: interrupted (finished work is kept; rerun to resume)", file=sys.stderr)
        return 130


__all__ = ["CLIError", "build_parser", "main"]
