"""``cellgi registry list|show``: what components are installed, and their parameters."""

from __future__ import annotations

import argparse
import json
import sys

from cellgi.cli import command_group
from cellgi.registry import ROLES, PluginLoadError
from cellgi.registry.display import as_dict, collect, find, list_table, show_blocks

__all__ = ["add_parser", "collect", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    rsub = command_group(sub, "registry", "list registered components and show their parameters")
    lp = rsub.add_parser(
        "list",
        help="list components (built-in and plugins)",
        description="List registered components. Kinds: " + ", ".join(ROLES) + ".",
    )
    lp.add_argument("pattern", nargs="?", default="*", help="wildcard on the name, e.g. '*attention*'")
    lp.add_argument("--kind", choices=list(ROLES), help="only this kind (role)")
    lp.add_argument("--json", action="store_true", help="print a JSON list")
    lp.set_defaults(func=run_list)
    sp = rsub.add_parser("show", help="a component's parameters with types, defaults and descriptions")
    sp.add_argument("name", help="component name (see 'cellgi registry list')")
    sp.add_argument("--kind", choices=list(ROLES), help="disambiguate a name used by several kinds")
    sp.add_argument("--json", action="store_true", help="print JSON")
    sp.set_defaults(func=run_show)


def run_list(args: argparse.Namespace) -> int:
    entries = collect(args.pattern, args.kind)
    if args.json:
        print(json.dumps([as_dict(e) for e in entries], indent=2))
        return 0
    from rich.console import Console

    Console().print(list_table(entries))
    if not entries:
        print(f"no component matches {args.pattern!r}", file=sys.stderr)
        return 1
    return 0


def run_show(args: argparse.Namespace) -> int:
    try:
        entries = find(args.name, args.kind)
    except PluginLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([as_dict(e, params=True) for e in entries], indent=2, default=str))
        return 0
    from rich.console import Console

    console = Console()
    for e in entries:
        for block in show_blocks(e):
            console.print(block)
    return 0


def run(args: argparse.Namespace) -> int:  # pragma: no cover - dispatch is per subcommand
    return run_list(args)
