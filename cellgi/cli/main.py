"""``cellgi`` command line: one small module per command under :mod:`cellgi.cli`.

Each command module exposes ``add_parser(subparsers)`` (adding its sub-parser with ``func=run``) and
``run(args) -> int``. ``main(argv)`` returns the exit status, so tests call it in-process.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from cellgi import __version__

__all__ = ["COMMANDS", "build_parser", "main"]

#: command modules, in the order ``--help`` lists them
COMMANDS = ("train", "evaluate", "predict", "data", "spec", "registry", "bench", "plugin")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cellgi",
        description="Genetic interaction prediction with graph neural networks over gene networks.",
        epilog="Run 'cellgi COMMAND --help' for a command's options. Docs: docs/ in the repository.",
    )
    parser.add_argument("--version", action="version", version=f"cellgi {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"cellgi.cli.{name}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 failure, 2 bad input)."""
    from cellgi.registry import ComponentError
    from cellgi.spec import SpecError

    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # --help, --version, usage errors
        return int(exc.code or 0)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except SpecError as exc:
        print(exc.render(), file=sys.stderr)
        return 2
    except ComponentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def entrypoint() -> None:  # pragma: no cover - console script shim
    """The ``cellgi`` command: process-wide settings (:mod:`cellgi.runtime`), then :func:`main`."""
    from cellgi.runtime import tune_host_allocator

    try:
        tune_host_allocator()
    except ValueError as exc:  # a bad CELLGI_HOST_ALLOCATOR value
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    entrypoint()
