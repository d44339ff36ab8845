"""Generic edge tables with named columns: CSV, TSV or Parquet (Parquet needs pandas)."""

from __future__ import annotations

from pathlib import Path

from cellgi.data.errors import DataError
from cellgi.data.readers._edges import RawEdges, RawEdgesBuilder
from cellgi.data.readers._io import parse_float
from cellgi.data.readers._table import read_table

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
    raw = b.build()
    if raw.num_rows == 0:
        raise DataError("no rows after the header", path)
    return raw
