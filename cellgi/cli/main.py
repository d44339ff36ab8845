# PYTHON_ARGCOMPLETE_OK  (lets argcomplete's global completion find this console script)
"""``cellgi`` command line: one small module per command under :mod:`cellgi.cli`.

Each command module exposes ``add_parser(subparsers)`` (adding its sub-parser with ``func=run``) and
``run(args) -> int``. ``main(argv)`` returns the exit status, so tests call it in-process.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from typing import Iterator, Sequence

from cellgi import __version__
from cellgi.errors import CellgiError
from cellgi.fileio import describe_os_error
from cellgi.runtime import passive_omp_wait_for, tune_host_allocator

# The work of a command is imported inside its functions, for startup time: building the parser imports
# every command module, so a module-level import of torch or a layer below would slow every command.

__all__ = ["COMMANDS", "build_parser", "main"]

#: command modules, in the order ``--help`` lists them
COMMANDS = ("train", "sweep", "evaluate", "predict", "screen", "embed", "data", "spec", "registry", "bench", "plugin",
            "pretrained")


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
    _mark_parsers(parser)
    return parser


def _mark_parsers(parser: argparse.ArgumentParser) -> None:
    """Each (sub)command parser records itself in the namespace, so that an unknown flag is reported
    with the usage of the command it was given to (``cellgi train --bad-flag`` shows train's usage)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                child.set_defaults(_cellgi_parser=child)
                _mark_parsers(child)


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse; trailing ``key=value`` arguments go to commands that take overrides, anything else
    unknown is an error shown with the usage of the (sub)command that got it."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        owner = getattr(args, "_cellgi_parser", parser)
        takes_overrides = isinstance(getattr(args, "overrides", None), list)
        if takes_overrides and not any(e.startswith("-") for e in extra):
            args.overrides = [*args.overrides, *extra]
        else:
            owner.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


@contextlib.contextmanager
def _wide_when_piped() -> Iterator[None]:
    """Piped output is not wrapped at 80 columns: rich takes its width from ``COLUMNS`` when stdout is
    not a terminal, so give it room for the longest line while the command runs."""
    if sys.stdout.isatty():
        yield
        return
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(PIPE_WIDTH)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old


#: line width of rich output written to a pipe or file (no wrapping, no truncation in practice)
PIPE_WIDTH = 4000


def _autocomplete(parser: argparse.ArgumentParser) -> None:
    """Shell completion through argcomplete when the shell asks for it (``_ARGCOMPLETE`` is set)."""
    if "_ARGCOMPLETE" not in os.environ:
        return
    try:
        import argcomplete
    except ImportError:  # completion is optional; the command itself still works
        return
    from cellgi.cli.completion import attach_completers

    attach_completers(parser)
    argcomplete.autocomplete(parser)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 failure, 2 bad input)."""
    parser = build_parser()
    _autocomplete(parser)
    try:
        args = _parse(parser, list(argv) if argv is not None else sys.argv[1:])
    except SystemExit as exc:  # --help, --version, usage errors
        return int(exc.code or 0)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with _wide_when_piped():
            return int(args.func(args) or 0)
    except CellgiError as exc:  # every error cellgi raises on purpose: its own text and exit status
        print(exc.render(), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # a write (or read) the command did not foresee: one line, never a traceback
        if isinstance(exc, BrokenPipeError):
            raise  # the reader went away: entrypoint() ends quietly
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{describe_os_error(exc)}", file=sys.stderr)
        return 1


def entrypoint() -> None:  # pragma: no cover - console script shim
    """The ``cellgi`` command: process-wide settings (:mod:`cellgi.runtime`), then :func:`main`."""
    passive_omp_wait_for(sys.argv[1:2])
    try:
        tune_host_allocator()
    except ValueError as exc:  # a bad CELLGI_HOST_ALLOCATOR value
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # the reader went away (`cellgi registry list | head`): end quietly, as a SIGPIPE'd tool does;
        # stdout goes to devnull so that the interpreter's final flush cannot complain either
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(141)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    entrypoint()
