"""Generic edge tables with named columns: CSV, TSV or Parquet (Parquet needs pandas)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from cellgi.data.errors import DataError
from cellgi.data.readers._edges import RawEdges, RawEdgesBuilder
from cellgi.data.readers._io import parse_float, require_rows
from cellgi.data.readers._table import read_table
from cellgi.data.readers.base import GraphFormat
from cellgi.registry import Params, register

__all__ = ["read_edge_table"]


def read_edge_table(
    path: str | Path,
    source_column: str,
    target_column: str,
    weight_column: str | None = None,
    sep: str | None = None,
) -> RawEdges:
    """Read edges from named columns (matched case-insensitively).

    Args:
        path: ``.csv``, ``.tsv``/``.txt`` (tab), ``.parquet``; ``.gz`` allowed for text.
        source_column, target_column: gene identifier columns.
        weight_column: optional weight column.
        sep: field separator (default: ``,`` for .csv, else tab).

    Raises:
        DataError: missing columns, ragged rows, empty gene fields, bad weights (file and line),
            or no rows.
    """
    t = read_table(path, sep, "edge table")
    si, ti = t.column(source_column, "source column"), t.column(target_column, "target column")
    wi = None if weight_column is None else t.column(weight_column, "weight column")
    b = RawEdgesBuilder(path, weighted=wi is not None)
    for lineno, f in t.rows:
        a, c = f[si].strip(), f[ti].strip()
        if not a or not c:
            raise DataError("empty gene identifier", path, lineno)
        w = parse_float(f[wi], path, lineno, "weight") if wi is not None else None
        b.add(a, c, lineno, w)
    return require_rows(b.build(), "no rows after the header")


class EdgeTableParams(Params):
    source_column: str = Field(description="column of the source gene")
    target_column: str = Field(description="column of the target gene")
    weight_column: str | None = Field(None, description="column of the edge weight")
    sep: str | None = Field(None, description="column separator; guessed from the suffix when unset")


@register("graph_format", "table", summary="CSV/TSV/Parquet with named source/target/weight columns",
          params=EdgeTableParams)
class EdgeTableFormat(GraphFormat[EdgeTableParams]):
    """Column-named edge table (see :func:`read_edge_table`)."""

    def read(self, spec: EdgeTableParams, files: dict[str, Path]) -> RawEdges:
        return read_edge_table(files["path"], spec.source_column, spec.target_column, spec.weight_column, spec.sep)
