"""The ``cellgi`` command line: one module per command (see :mod:`cellgi.cli.main`)."""

from __future__ import annotations

import argparse

__all__ = ["command_group"]


def command_group(sub: argparse._SubParsersAction, name: str, help: str) -> argparse._SubParsersAction:
    """Add command ``name`` made of subcommands (``cellgi NAME SUBCOMMAND``); returns the subparsers to
    add them to. ``cellgi NAME`` alone prints the command's help and exits 2."""
    p = sub.add_parser(name, help=help)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    return p.add_subparsers(dest=f"{name}_command", metavar="SUBCOMMAND")
