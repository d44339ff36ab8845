"""``cellgi registry list|show``: what components are installed, and their parameters."""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from typing import Any

from cellgi.registry import ROLES, ComponentEntry, PluginLoadError, UnknownComponentError, get_registry

__all__ = ["add_parser", "collect", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("registry", help="list registered components and show their parameters")
    rsub = p.add_subparsers(dest="registry_command", metavar="SUBCOMMAND")
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
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def collect(pattern: str = "*", kind: str | None = None) -> list[ComponentEntry]:
    """Every component (loading plugins; broken ones included with their status)."""
    out: list[ComponentEntry] = []
    for role in ROLES:
        if kind and role != kind:
            continue
        for entry in get_registry(role).load_all():
            if fnmatch.fnmatchcase(entry.name, pattern):
                out.append(entry)
    return sorted(out, key=lambda e: (e.role, e.name, e.provider))


def _as_dict(e: ComponentEntry) -> dict[str, Any]:
    return {
        "name": e.name,
        "kind": e.role,
        "provider": e.provider,
        "version": e.version,
        "status": e.status,
        "summary": e.summary,
    }


def run_list(args: argparse.Namespace) -> int:
    entries = collect(args.pattern, args.kind)
    if args.json:
        print(json.dumps([_as_dict(e) for e in entries], indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"cellgi components ({len(entries)})", show_lines=False)
    for col in ("kind", "name", "provider", "version", "summary / status"):
        table.add_column(col, overflow="fold")
    for e in entries:
        text = e.summary if e.status == "ok" else f"[red]{e.status}[/red]"
        table.add_row(e.role, e.name, e.provider, e.version, text)
    Console().print(table)
    if not entries:
        print(f"no component matches {args.pattern!r}", file=sys.stderr)
        return 1
    return 0


def _find(name: str, kind: str | None) -> list[ComponentEntry]:
    roles = [kind] if kind else list(ROLES)
    found = []
    for role in roles:
        reg = get_registry(role)
        if name in reg.names():
            found.append(reg.get(name))
    if not found:
        valid = sorted({n for r in roles for n in get_registry(r).names()})
        raise UnknownComponentError(kind or "component", name, valid)
    return found


def run_show(args: argparse.Namespace) -> int:
    try:
        entries = _find(args.name, args.kind)
    except PluginLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([{**_as_dict(e), "params": e.describe()} for e in entries], indent=2, default=str))
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for e in entries:
        console.print(f"[bold]{e.name}[/bold] ({e.role}) from {e.provider} {e.version}: {e.summary}")
        ctx = ROLES[e.role][2]
        console.print(f"  spec: {{type: {e.name}, ...params}}; the model passes: {ctx}")
        rows = e.describe()
        if not rows:
            console.print("  no parameters")
            continue
        t = Table(show_header=True)
        for col in ("parameter", "type", "default", "description"):
            t.add_column(col, overflow="fold")
        for r in rows:
            t.add_row(r["name"], r["type"], "required" if r["required"] else repr(r["default"]), r["description"])
        console.print(t)
    return 0


def run(args: argparse.Namespace) -> int:  # pragma: no cover - dispatch is per subcommand
    return run_list(args)
