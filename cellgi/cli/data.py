"""``cellgi data summary SPEC [--unmapped] [--json]``: what the data section reads, and what it left out."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from cellgi.cli import command_group

__all__ = ["add_parser", "run_summary"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    dsub = command_group(sub, "data", "inspect the data a spec reads (genes, graphs, screens)")
    sp = dsub.add_parser(
        "summary",
        help="genes, edges per type, samples per kind, unmapped identifiers",
        description="Build (or load from the cache) the spec's data and print what was read. "
        "Exit 0 on success, 1 on a data error, 2 on an invalid spec.",
    )
    sp.add_argument("spec", metavar="SPEC", help="spec YAML or a shipped example name")
    sp.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="spec overrides, e.g. data.root=/data/yeast")
    sp.add_argument("--unmapped", action="store_true", help="list every unmapped identifier")
    sp.add_argument("--json", action="store_true", help="print the report as JSON")
    sp.add_argument("--no-cache", action="store_true", help="rebuild without reading or writing the cache")
    sp.set_defaults(func=run_summary)


def run_summary(args: argparse.Namespace) -> int:
    from cellgi.data.build import build_data
    from cellgi.data.errors import DataError
    from cellgi.cli.spec import load_spec_arg, missing_data_root
    from cellgi.spec import SpecError

    try:
        spec = load_spec_arg(args.spec, args.overrides)
    except SpecError as exc:
        print(exc.render(), file=sys.stderr)
        return 2
    except (OSError, LookupError) as exc:
        print(f"error: {exc}", file=sys.stderr)
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
