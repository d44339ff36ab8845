"""What ``cellgi registry list|show`` shows: rows for JSON and rich tables, computed from the registries."""

from __future__ import annotations

import fnmatch
from typing import Any

from cellgi.registry.core import ComponentEntry, get_registry
from cellgi.registry.errors import UnknownComponentError
from cellgi.registry.roles import ROLES

# rich.table is imported inside the functions for startup time (~0.2 s): the CLI imports this module to build
# its parser, and only `cellgi registry list|show` draws a table.

__all__ = ["as_dict", "collect", "find", "list_table", "show_blocks"]


def collect(pattern: str = "*", kind: str | None = None) -> list[ComponentEntry]:
    """Every component whose name matches ``pattern`` (loading plugins; broken ones included)."""
    out: list[ComponentEntry] = []
    for role in ROLES:
        if kind and role != kind:
            continue
        for entry in get_registry(role).load_all():
            if fnmatch.fnmatchcase(entry.name, pattern):
                out.append(entry)
    return sorted(out, key=lambda e: (e.role, e.name, e.provider))


def as_dict(e: ComponentEntry, *, params: bool = False) -> dict[str, Any]:
    row: dict[str, Any] = {
        "name": e.name,
        "kind": e.role,
        "provider": e.provider,
        "version": e.version,
        "status": e.status,
        "summary": e.summary,
    }
    if e.capabilities:
        row["capabilities"] = dict(e.capabilities)
    if params:
        row["params"] = e.describe()
    return row


def find(name: str, kind: str | None) -> list[ComponentEntry]:
    """The components called ``name`` (in ``kind`` or any role); raises on unknown or broken ones."""
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


def list_table(entries: list[ComponentEntry]) -> Any:
    """A rich table of components (kind, name, provider, version, summary or status)."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"cellgi components ({len(entries)})", show_lines=False)
    for col in ("kind", "name", "provider", "version", "summary / status"):
        table.add_column(col, overflow="fold")
    for e in entries:
        # summaries and statuses are text (a plugin's, an exception's), never rich markup: '[weight]' stays
        text = escape(e.summary) if e.status == "ok" else f"[red]{escape(e.status)}[/red]"
        table.add_row(e.role, e.name, escape(e.provider), escape(e.version), text)
    return table


def show_blocks(e: ComponentEntry) -> list[Any]:
    """Renderables describing one component: header, how a spec names it, its parameter table."""
    from rich.markup import escape
    from rich.table import Table

    ctx = ROLES[e.role].context
    out: list[Any] = [
        f"[bold]{e.name}[/bold] ({e.role}) from {escape(e.provider)} {escape(e.version)}: {escape(e.summary)}",
    ]
    if e.role in ("graph_format", "screen_format"):
        section = "data.graphs" if e.role == "graph_format" else "data.screens"
        out.append(escape(f"  spec: a {section} entry {{format: {e.name}, ...params}} besides the shared keys: {ctx}"))
    else:
        out.append(escape(f"  spec: {{type: {e.name}, ...params}}; cellgi passes: {ctx}"))
    declared = [flag for flag, on in e.capabilities.items() if on]
    if e.capabilities:
        out.append(f"  capabilities: {', '.join(declared) or 'none declared'}")
    rows = e.describe()
    if not rows:
        out.append("  no parameters")
        return out
    t = Table(show_header=True)
    for col in ("parameter", "type", "default", "description"):
        t.add_column(col, overflow="fold")
    for r in rows:
        default = "required" if r["required"] else repr(r["default"])
        t.add_row(*(escape(str(v)) for v in (r["name"], r["type"], default, r["description"])))
    out.append(t)
    return out
