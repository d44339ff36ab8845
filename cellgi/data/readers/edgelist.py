"""Plain edge lists: ``ORF ORF [weight]`` per line, whitespace-separated, ``#`` comments."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from cellgi.data.errors import DataError
from cellgi.data.readers._edges import RawEdges, RawEdgesBuilder
from cellgi.data.readers._io import iter_lines, parse_float, require_rows
from cellgi.data.readers.base import GraphFormat
from cellgi.registry import Params, register

__all__ = ["read_edgelist"]


def read_edgelist(path: str | Path, *, weighted: bool = False) -> RawEdges:
    """Read ``a b`` (or ``a b weight`` when ``weighted``) rows.

    Raises:
        DataError: a row with the wrong number of fields or a bad weight (file and line), or no rows.
    """
    want = 3 if weighted else 2
    b = RawEdgesBuilder(path, weighted=weighted)
    for lineno, line in iter_lines(path, "edge list"):
        f = line.split()
        if not f or f[0].startswith("#"):
            continue
        if len(f) != want:
            hint = " (set weighted: true for a third column)" if len(f) == 3 and not weighted else ""
            raise DataError(f"expected {want} fields, found {len(f)}{hint}", path, lineno)
        w = parse_float(f[2], path, lineno, "weight") if weighted else None
        b.add(f[0], f[1], lineno, w)
    return require_rows(b.build(), "no edges (empty file?)")


class EdgeListParams(Params):
    weighted: bool = Field(False, description="third column is a weight")


@register("graph_format", "edgelist", summary="whitespace-separated 'ORF ORF [weight]' lines", params=EdgeListParams)
class EdgeListFormat(GraphFormat[EdgeListParams]):
    """Plain edge list (see :func:`read_edgelist`)."""

    def read(self, spec: EdgeListParams, files: dict[str, Path]) -> RawEdges:
        return read_edgelist(files["path"], weighted=spec.weighted)
