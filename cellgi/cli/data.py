"""``cellgi data summary SPEC [--unmapped] [--json]``: what the data section reads, and what it left out.

``cellgi data list`` and ``cellgi data get NAME``: the public data sources by name (:mod:`cellgi.data.sources`).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from pathlib import Path
from typing import Any

from cellgi.cli import command_group
from cellgi.cli._common import add_spec_command
from cellgi.registry import UnknownComponentError

# The work of a command is imported inside its functions, for startup time: building the parser imports
# every command module, so a module-level import of torch or a layer below would slow every command.

__all__ = ["add_parser", "run_get", "run_list", "run_summary"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    dsub = command_group(sub, "data", "inspect the data a spec reads (genes, graphs, screens)")
    sp = add_spec_command(
        dsub, "summary", overrides_help="spec overrides, e.g. data.root=/data/yeast",
        help="genes, edges per type, samples per kind, unmapped identifiers",
        description="Build (or load from the cache) the spec's data and print what was read. "
        "Exit 0 on success, 1 on a data error, 2 on an invalid spec.",
    )
    sp.add_argument("--unmapped", action="store_true", help="list every unmapped identifier")
    sp.add_argument("--json", action="store_true", help="print the report as JSON")
    sp.add_argument("--no-cache", action="store_true", help="rebuild without reading or writing the cache")
    sp.set_defaults(func=run_summary)
    lp = dsub.add_parser(
        "list",
        help="public data sources by name: address, checksum, licence, size, layout, spec block",
        description="List the registered data sources (built-in and plugins, role data_source). A checksum "
        "is shown only where it was computed from the very file; others say 'not pinned'. See docs/data.md.",
    )
    lp.add_argument("pattern", nargs="?", default="*", help="only names matching this wildcard (e.g. 'string*')")
    lp.add_argument("--json", action="store_true", help="print every field as JSON")
    lp.set_defaults(func=run_list)
    gp = dsub.add_parser(
        "get",
        help="download a data source into the data folder (checksum verified, resumable)",
        description="Download NAME (and the sources its spec block also reads) into the data folder: "
        "$CELLGI_DATA_DIR, else the user cache dir. A cut download resumes when run again; a wrong "
        "checksum keeps nothing. Prints the path and the spec block that reads it.",
    )
    gp.add_argument("names", nargs="+", metavar="NAME", help="source names (see 'cellgi data list')")
    gp.add_argument("--dir", metavar="DIR", help="data folder (default: $CELLGI_DATA_DIR or the user cache dir)")
    gp.add_argument("--force", action="store_true", help="download again even when the file is there")
    gp.add_argument("--file", metavar="PATH", help="install a copy downloaded by hand (checked like a download)")
    gp.add_argument("--no-progress", action="store_true", help="no progress bar")
    gp.set_defaults(func=run_get)


def run_summary(args: argparse.Namespace) -> int:
    from cellgi.data.build import build_data
    from cellgi.data.errors import DataError
    from cellgi.cli.spec import load_spec_or_report, missing_data_root

    spec = load_spec_or_report(args.spec, args.overrides)
    if spec is None:
        return 2
    hint = missing_data_root(args.spec, spec)
    if hint:
        print(f"error: {hint}", file=sys.stderr)
        return 2
    try:
        bundle = build_data(spec.data, progress=not args.json, cache=False if args.no_cache else None)
    except DataError as exc:
        print(f"data error: {exc}", file=sys.stderr)
        return 1
    report = bundle.report.to_dict()
    report["cache"] = {"path": str(bundle.cache_path) if bundle.cache_path else None, "hit": bundle.from_cache}
    if args.json:
        if not args.unmapped:
            for u in report["unmapped"]:
                u["items"] = u["items"][:10]
        print(json.dumps(report, indent=2))
        return 0
    _print_rich(report, args.unmapped)
    return 0


#: the counts of a grid screen shown by ``cellgi data summary`` (label, key in ``report.grid``)
_GRID_ROWS = (
    ("rows read", "rows"), ("rows unscored (NA)", None), ("rows with an unmapped strain", "unmapped_rows"),
    ("unmapped strains", "unmapped_strains"), ("rows outside the gene lists", "rows_outside_grid"),
    ("query genes (strains)", ("query_genes", "query_strains")), ("array genes (strains)", ("array_genes", "array_strains")),
    ("genes on both sides", "genes_both_sides"), ("alleles merged (extra strains per gene)", "alleles_merged"),
    ("rows of lower-priority alleles dropped", "allele_rows_dropped"), ("self rows dropped", "self_rows_dropped"),
    ("self pairs dropped (grid)", "self_pairs_dropped"), ("rows merged into a pair", "rows_merged"),
    ("reciprocal pairs (listed both ways)", "reciprocal_pairs"), ("listed pairs", "listed_pairs"),
    ("grid cells (query x array)", "grid_cells"), ("grid pairs (unordered, no self)", "grid_pairs"),
    ("listed share", "listed_fraction"), ("neutral value", "neutral"),
)


def _print_grid(con: Any, g: dict[str, Any]) -> None:
    from rich.table import Table

    t = Table(title=f"grid screen (sga_grid, {g.get('layout')} layout, alleles: {g.get('alleles')})")
    t.add_column("count")
    t.add_column("value", justify="right")
    for label, key in _GRID_ROWS:
        if key is None:
            value = g.get("reasons", {}).get("no measured target", 0)
        elif isinstance(key, tuple):
            value = f"{g.get(key[0], 0):,} ({g.get(key[1], 0):,})"
        else:
            value = g.get(key, "-")
        t.add_row(label, f"{value:,}" if isinstance(value, int) else str(value))
    for name, e in g.get("evaluated", {}).items():
        t.add_row(f"{name}: evaluated on a uniform sample", f"{e['pairs']:,} of {e['of']:,}")
    con.print(t)


def _print_rich(r: dict[str, Any], list_unmapped: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    con.print(f"[bold]genes[/bold]: {r['genes']}   source: {r['source']}   "
              f"cache: {'hit' if r['cache']['hit'] else 'built'} ({r['cache']['path']})")
    t = Table(title="edge types")
    for c in ("name", "directed", "weighted", "stored edges", "rows", "unmapped rows", "dup merged", "self-loops"):
        t.add_column(c, justify="left" if c == "name" else "right")
    for name, e in r["edges"].items():
        t.add_row(
            name, str(e.get("directed")), str(e.get("weighted")), f"{e['edges']:,}",
            f"{e.get('rows', '-'):,}" if isinstance(e.get("rows"), int) else "-",
            str(e.get("unmapped_rows", "-")), str(e.get("duplicates_merged", "-")), str(e.get("self_loops_dropped", "-")),
        )
    con.print(t)
    t = Table(title="samples")
    t.add_column("kind")
    t.add_column("samples", justify="right")
    for k, v in r["samples"].items():
        t.add_row(k, f"{v:,}")
    t.add_row("[bold]total[/bold]", f"{sum(r['samples'].values()):,}")
    con.print(t)
    if r.get("grid"):
        _print_grid(con, r["grid"])
    con.print("splits: " + ", ".join(f"{k} {v:,}" for k, v in r["splits"].items())
              + (f" (dropped {r['split_dropped']})" if r["split_dropped"] else ""))
    t = Table(title="unmapped identifiers")
    for c in ("source", "identifiers", "rows", "reasons", "examples"):
        t.add_column(c)
    for u in r["unmapped"]:
        t.add_row(u["source"], str(u["identifiers"]), str(u["rows"]),
                  ", ".join(f"{k}: {v}" for k, v in u["by_reason"].items()),
                  ", ".join(i["id"] for i in u["items"][:5]))
    if r["unmapped"]:
        con.print(t)
    else:
        con.print("unmapped identifiers: none")
    if list_unmapped and r["unmapped"]:
        t = Table(title="every unmapped identifier")
        for c in ("source", "identifier", "rows", "reason", "first line"):
            t.add_column(c)
        for u in r["unmapped"]:
            for i in u["items"]:
                t.add_row(u["source"], i["id"], str(i["rows"]), i["reason"], str(i["line"] or "-"))
        con.print(t)
    for w in r["warnings"]:
        con.print(f"[yellow]warning[/yellow]: {w}")


def _size(n: int | None) -> str:
    """Bytes as text ("3.0 MiB (3,146,834 bytes)"); unknown where the source is not pinned."""
    if n is None:
        return "unknown (not pinned)"
    if n < 1024:
        return f"{n:,} bytes"
    value, unit = float(n), "B"
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024:
            break
    return f"{value:.1f} {unit} ({n:,} bytes)"


def run_list(args: argparse.Namespace) -> int:
    from rich.console import Console

    from cellgi.data.sources import list_sources

    sources = [s for s in list_sources() if fnmatch.fnmatchcase(s.name, args.pattern)]
    if args.json:
        print(json.dumps([s.describe() for s in sources], indent=2))
        return 0 if sources else 1
    if not sources:
        print(f"no data source matches {args.pattern!r} (cellgi data list shows them all)", file=sys.stderr)
        return 1
    con = Console(soft_wrap=True)
    for s in sources:
        con.print(f"[bold]{s.name}[/bold]: {type(s).__cellgi_component__['summary']}", highlight=False)
        rows = [
            ("address", s.url + {None: "", "gzip": "  (gzipped; kept decompressed)"}.get(
                s.archive, f"  (a zip archive; its member {(s.archive or '')[4:]} is kept)")),
            ("checksum", f"sha256:{s.sha256}" if s.sha256 else "not pinned (the first download prints the hash it found)"),
            ("size", _size(s.size)),
            ("licence", s.licence),
            ("cite", s.citation),
            ("layout", s.layout),
            ("saved as", f"DATA_DIR/{s.path}"),
            ("spec block", s.spec_block or "none built in (see note)"),
        ]
        if s.needs:
            rows.append(("also gets", ", ".join(s.needs)))
        if s.note:
            rows.append(("note", s.note))
        for k, v in rows:
            con.print(f"  {k:<10} {v}", highlight=False, markup=False)
    return 0


def run_get(args: argparse.Namespace) -> int:
    from cellgi.data.fetch import DataSourceError, data_dir, fetch
    from cellgi.data.sources import get_source

    try:
        wanted = []
        for name in args.names:
            src = get_source(name)
            for dep in (*src.needs, name):
                if dep not in wanted:
                    wanted.append(dep)
    except UnknownComponentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.file and len(wanted) != 1:
        print("error: --file installs one source's file: name one source (without others it needs)", file=sys.stderr)
        return 2
    folder = args.dir or data_dir()
    failed = 0
    for name in wanted:
        try:
            res = fetch(name, folder=folder, progressbar=not args.no_progress, force=args.force,
                        local_file=args.file if name in args.names else None)
        except DataSourceError as exc:
            print(f"error: {name}: {exc}", file=sys.stderr)
            failed += 1
            continue
        src = get_source(name)
        how = "downloaded" if res.downloaded else "already there"
        print(f"{name}: {res.path} ({how})")
        if res.pinned:
            print(f"  sha256 {res.sha256} (matches the pinned checksum)")
        else:
            print(f"  sha256 {res.sha256} (not pinned: this is the hash of the file just found; "
                  "compare it with a second download before relying on it)")
        if src.spec_block:
            print(f"  spec block (with data.root: {Path(folder).resolve()}):")
            for line in src.spec_block.splitlines():
                print(f"    {line}")
        if src.note:
            print(f"  note: {src.note}")
    return 1 if failed else 0
