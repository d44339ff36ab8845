"""Generic screen tables: gene columns (or one ``genes`` column like ``YAL015C;YBL007C``) and targets."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

from pydantic import Field, model_validator

from cellgi.data.errors import DataError
from cellgi.data.readers._screen import SPLIT_CODES, RawScreen, RawScreenBuilder, parse_target
from cellgi.data.readers._io import require_rows
from cellgi.data.readers._table import read_table
from cellgi.data.readers.base import ScreenFormat
from cellgi.registry import Params, register

__all__ = ["read_screen_table"]


def read_screen_table(
    path: str | Path,
    target_columns: Mapping[str, str],
    *,
    gene_columns: Sequence[str] | None = None,
    genes_column: str | None = None,
    genes_separator: str = ";",
    weight_column: str | None = None,
    split_column: str | None = None,
    sep: str | None = None,
) -> RawScreen:
    """Read samples from a column-named table (CSV/TSV/Parquet).

    Args:
        path: the table.
        target_columns: target name -> column (e.g. ``{"gene_interaction": "epsilon"}``).
        gene_columns: one column per deleted gene; empty cells are allowed (fewer genes).
        genes_column: alternatively one column holding ``genes_separator``-joined genes.
        weight_column: optional per-sample weight (> 0).
        split_column: optional ``train``/``val``/``test`` per sample (case-insensitive).
        sep: field separator (default from the suffix).

    Rows with a gene repeated (``gene repeated in sample``) or no measured target
    (``no measured target``) are counted and left out; malformed rows raise :class:`DataError`.
    """
    if (gene_columns is None) == (genes_column is None):
        raise DataError("give exactly one of gene_columns and genes_column", path)
    if not target_columns:
        raise DataError("target_columns is empty", path)
    t = read_table(path, sep, "screen table")
    gcols = [t.column(c, "gene column") for c in gene_columns] if gene_columns else []
    gsingle = t.column(genes_column, "genes column") if genes_column else None
    tcols = {name: t.column(c, "target column") for name, c in target_columns.items()}
    wi = t.column(weight_column, "weight column") if weight_column else None
    spi = t.column(split_column, "split column") if split_column else None
    b = RawScreenBuilder(path, list(target_columns), weighted=wi is not None)
    for lineno, f in t.rows:
        if gsingle is not None:
            genes = [g.strip() for g in f[gsingle].split(genes_separator) if g.strip()]
        else:
            genes = [f[c].strip() for c in gcols if f[c].strip()]
        if not genes:
            raise DataError("no gene in this row", path, lineno)
        values = b.measured(genes, f, t.header, tcols, path, lineno)
        if values is None:
            continue
        w = None
        if wi is not None:
            w = parse_target(f[wi])
            if w is None or math.isnan(w) or w <= 0:
                raise DataError(f"weight {f[wi]!r} must be a positive number", path, lineno)
        split = -1
        if spi is not None:
            key = f[spi].strip().lower()
            if key not in SPLIT_CODES:
                raise DataError(f"split value {f[spi]!r} is not train, val or test", path, lineno)
            split = SPLIT_CODES[key]
        b.add(genes, values, lineno, w, split)
    return require_rows(b.build(), "no rows after the header")


class ScreenTableParams(Params):
    """A generic table: gene columns or one ``genes`` column (``YAL015C;YBL007C``), target columns."""

    gene_columns: list[str] | None = Field(None, description="one column per deleted gene (empty cells allowed)")
    genes_column: str | None = Field(None, description="one column of joined genes, e.g. YAL015C;YBL007C")
    genes_separator: str = Field(";", min_length=1, description="separator inside genes_column")
    target_columns: dict[str, str] = Field(description="target name -> column")
    weight_column: str | None = Field(None, description="column of positive per-sample weights")
    split_column: str | None = Field(None, description="column of train/val/test (for split kind 'column')")
    sep: str | None = Field(None, description="column separator; guessed from the suffix when unset")

    @model_validator(mode="after")
    def _genes(self) -> "ScreenTableParams":
        if (self.gene_columns is None) == (self.genes_column is None):
            raise ValueError("give exactly one of gene_columns and genes_column")
        if not self.target_columns:
            raise ValueError("target_columns must name at least one target")
        return self


@register("screen_format", "table", summary="CSV/TSV/Parquet with gene and target columns", params=ScreenTableParams)
class ScreenTableFormat(ScreenFormat[ScreenTableParams]):
    """Column-named screen table (see :func:`read_screen_table`)."""

    def read(self, spec: ScreenTableParams, files: dict[str, Path]) -> RawScreen:
        return read_screen_table(
            files["path"],
            spec.target_columns,
            gene_columns=spec.gene_columns,
            genes_column=spec.genes_column,
            genes_separator=spec.genes_separator,
            weight_column=spec.weight_column,
            split_column=spec.split_column,
            sep=spec.sep,
        )
