"""``table``: numeric columns of a TSV/CSV/Parquet keyed by gene (ORFs, names or strain ids)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from cellgi.data.errors import DataError
from cellgi.data.features.base import (
    FeatureContext,
    GeneFeatureBlock,
    GeneFeatureSource,
    resolve_path,
    standardize_and_impute,
)
from cellgi.data.readers._io import FLOAT32_NOTE, check_file, in_float32, iter_lines
from cellgi.data.readers._table import read_table
from cellgi.registry import Params, register

__all__ = ["TableFeatures", "TableFeaturesParams"]


class TableFeaturesParams(Params):
    path: str = Field(description="TSV/CSV/Parquet file (relative to data.root)")
    gene_column: str | None = Field(None, description="column naming the gene (default: the first column)")
    columns: list[str] | None = Field(None, description="numeric columns to use (default: every numeric column)")
    header: bool = Field(True, description="false: no header row; columns are named by column_names or c1, c2, ...")
    column_names: list[str] | None = Field(None, description="names of the columns after the gene column (header: false)")
    sep: str | None = Field(None, description="separator (default: ',' for .csv, tab otherwise; whitespace when header: false)")
    strip_suffix: bool = Field(False, description="strip a strain suffix after the last '_' (YAL001C_damp174 -> YAL001C)")
    prefix: str | None = Field(None, description="column name prefix (default: the file stem)")
    standardize: bool = Field(True, description="z-score each column over the genes that have a value")
    impute: Literal["median", "mean", "zero"] = Field(
        "median", description="value for genes absent from the table (after z-scoring; zero = the mean)"
    )
    missing_indicator: bool = Field(True, description="add a column that is 1 where the value was imputed")
    strain_priority: list[str] | None = Field(
        None, min_length=1,
        description="with strip_suffix: of a gene's rows, use only those of the first strain kind listed that it "
        "has (matched on the start of the suffix: dma matches YAL001C_dma1); a gene with none of them uses all "
        "its rows (default: every row, averaged)",
    )

    strain_kinds: list[str] | None = Field(
        None, min_length=1,
        description="with strip_suffix: use only the rows of these strain kinds (matched on the start of the "
        "suffix: tsq matches YAL001C_tsq508) and set the others aside; a gene without such a strain is "
        "missing, so the missing indicator marks it (e.g. [tsq, tsa, damp]: the alleles of essential genes)",
    )

    @model_validator(mode="after")
    def _priority_needs_suffixes(self) -> "TableFeaturesParams":
        for name in ("strain_priority", "strain_kinds"):
            if getattr(self, name) is not None and not self.strip_suffix:
                raise ValueError(f"{name} reads the strain suffix: set strip_suffix: true")
        return self

    @field_validator("columns", "column_names")
    @classmethod
    def _distinct_names(cls, v: list[str] | None) -> list[str] | None:
        """A name given twice (case-insensitively) would be one feature read twice, or two columns of
        which one is silently used."""
        if v is not None:
            low = [c.strip().lower() for c in v]
            twice = sorted({c for c, lc in zip(v, low) if low.count(lc) > 1})
            if twice:
                raise ValueError(f"column name(s) {twice} given more than once")
        return v


@register("gene_features", "table", summary="numeric columns of a table keyed by gene; imputed + missing indicator",
          params=TableFeaturesParams)
class TableFeatures(GeneFeatureSource):
    """Rows name a gene (mapped with the run's :class:`GeneMapper`: ORFs, case variants, common names,
    aliases; strain ids with ``strip_suffix``). Several rows of one gene (e.g. strains of several alleles)
    are averaged, or with ``strain_priority`` only the rows of the gene's most preferred strain kind;
    ``strain_kinds`` keeps only the rows of the kinds listed (a gene with none is missing). Rows whose gene
    is not in the gene list are counted, not used. A non-numeric cell in a
    used column is an error naming the line; an empty cell or ``NA``/``NaN`` is a missing value."""

    kind = "table"

    def __init__(self, path: str, gene_column: str | None = None, columns: list[str] | None = None,
                 header: bool = True, column_names: list[str] | None = None, sep: str | None = None,
                 strip_suffix: bool = False, prefix: str | None = None, standardize: bool = True,
                 impute: str = "median", missing_indicator: bool = True, strain_priority: list[str] | None = None,
                 strain_kinds: list[str] | None = None):
        self.path, self.gene_column, self.columns = path, gene_column, columns
        self.header, self.column_names, self.sep = header, column_names, sep
        self.strip_suffix, self.prefix, self.standardize = strip_suffix, prefix, standardize
        self.impute, self.missing_indicator = impute, missing_indicator
        self.strain_priority = [p.lower() for p in strain_priority] if strain_priority else None
        self.strain_kinds = [k.lower() for k in strain_kinds] if strain_kinds else None

    def input_files(self, root: Path) -> list[Path]:
        return [resolve_path(root, self.path)]

    def _rows(self, p: Path):
        """``(names, gene_idx, rows)`` where rows yields ``(line, fields)``."""
        if self.header:
            t = read_table(p, self.sep, what="feature table")
            gi = 0 if self.gene_column is None else t.column(self.gene_column, "gene_column")
            return [h.strip() for h in t.header], gi, t.rows, t.header_line
        lines = iter_lines(check_file(p, "feature table"), "feature table")

        def rows():
            width = None
            for lineno, line in lines:
                if not line.strip() or line.startswith("#"):
                    continue
                f = line.split(self.sep) if self.sep else line.split()
                if width is None:
                    width = len(f)
                elif len(f) != width:
                    raise DataError(f"expected {width} fields like the first row, found {len(f)}", p, lineno)
                yield lineno, f

        it = rows()
        try:
            first = next(it)
        except StopIteration:
            raise DataError("empty feature table", p) from None
        width = len(first[1])
        names = ["gene"] + (list(self.column_names) if self.column_names else [f"c{i}" for i in range(1, width)])
        if len(names) != width:
            raise DataError(f"column_names gives {len(names) - 1} names but rows have {width - 1} value fields", p, first[0])

        def chained():
            yield first
            yield from it

        return names, 0, chained(), None

    def _strain_rank(self, suffix: str) -> int:
        """Position of the strain kind of ``suffix`` in ``strain_priority`` (its length when unlisted)."""
        if self.strain_priority is None:
            return 0
        low = suffix.lower()
        return next((k for k, p in enumerate(self.strain_priority) if low.startswith(p)), len(self.strain_priority))

    def compute(self, ctx: FeatureContext) -> GeneFeatureBlock:
        p = resolve_path(ctx.root, self.path)
        names, gi, rows, header_line = self._rows(p)
        lower = [n.strip().lower() for n in names]
        used = [lower.index(c.lower()) for c in self.columns if c.lower() in lower] if self.columns is not None \
            else list(range(len(names)))
        for j in used:  # never read one of two same-named columns silently
            at = [i for i, x in enumerate(lower) if x == lower[j]]
            if len(at) > 1:
                raise DataError(f"column {names[j]!r} appears {len(at)} times in the header (columns "
                                f"{' and '.join(str(i + 1) for i in at)}); rename the copies", p, header_line)
        if self.columns is not None:
            use = []
            for c in self.columns:
                if c.lower() not in lower:
                    raise DataError(f"feature column {c!r} not in the columns {names}", p, header_line)
                use.append(lower.index(c.lower()))
            if gi in use:
                raise DataError(f"feature column {names[gi]!r} is the gene column", p, header_line)
            numeric_only = False
        else:
            use = [j for j in range(len(names)) if j != gi]
            numeric_only = True  # decided below: columns with any non-numeric text are left out (reported)
        index = {g: i for i, g in enumerate(ctx.genes)}
        n = len(ctx.genes)
        sums = np.zeros((n, len(use)))
        counts = np.zeros((n, len(use)))
        bad_col = np.zeros(len(use), dtype=bool)
        rows_read = unmapped = other_kind = 0
        unmapped_examples: list[str] = []
        parsed: list[tuple[int, list[float], int]] = []
        for lineno, f in rows:
            rows_read += 1
            ident = f[gi].strip()
            suffix = ""
            if self.strip_suffix and "_" in ident:
                ident, suffix = ident.rsplit("_", 1)
            gene = ctx.mapper.map(ident)
            vals = []
            for k, j in enumerate(use):
                cell = f[j].strip()
                if cell == "" or cell.lower() in ("na", "nan", "n/a", "null", "none"):
                    vals.append(np.nan)
                    continue
                try:
                    v = float(cell)
                except ValueError:
                    if numeric_only:
                        bad_col[k] = True
                        vals.append(np.nan)
                        continue
                    raise DataError(f"non-numeric value {cell!r} in feature column {names[j]!r}", p, lineno) from None
                if not in_float32(v):  # inf / 1e999 / 1e39 is not a measurement: never imputed silently
                    raise DataError(f"non-finite value {cell!r} in feature column {names[j]!r} {FLOAT32_NOTE}",
                                    p, lineno)
                vals.append(v)
            if gene is None or gene not in index:
                unmapped += 1
                if len(unmapped_examples) < 5:
                    unmapped_examples.append(ident)
                continue
            if self.strain_kinds is not None and not suffix.lower().startswith(tuple(self.strain_kinds)):
                other_kind += 1
                continue
            parsed.append((index[gene], vals, self._strain_rank(suffix)))
        set_aside = 0
        if self.strain_priority is not None:  # keep each gene's rows of its best-ranked strain kind
            best = np.full(n, len(self.strain_priority), dtype=np.int64)
            for i, _, rank in parsed:
                best[i] = min(best[i], rank)
            kept = [row for row in parsed if row[2] == best[row[0]]]
            set_aside = len(parsed) - len(kept)
            parsed = kept
        rows_per_gene = np.zeros(n, dtype=np.int64)
        for i, vals, _ in parsed:
            v = np.asarray(vals)
            ok = ~np.isnan(v)
            sums[i, ok] += v[ok]
            counts[i, ok] += 1
            rows_per_gene[i] += 1
        keep = [k for k in range(len(use)) if not bad_col[k] and counts[:, k].sum() > 0]
        kinds = f" of the strain kinds {self.strain_kinds}" if self.strain_kinds is not None else ""
        if self.columns is not None:
            empty = [names[use[k]] for k in range(len(use)) if counts[:, k].sum() == 0]
            if empty:
                raise DataError(f"feature column(s) {empty} have no value{kinds} for any gene of the gene list", p)
        if not keep:
            raise DataError(f"no numeric feature column with a value{kinds} for a gene of the gene list", p)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = sums[:, keep] / counts[:, keep]
        mean[counts[:, keep] == 0] = np.nan
        prefix = self.prefix or p.name.split(".")[0]
        cols = [names[use[k]] for k in keep]
        values, colnames, stats = standardize_and_impute(
            mean, prefix, cols, standardize=self.standardize, impute=self.impute, indicator=self.missing_indicator
        )
        covered = int((counts[:, keep].sum(1) > 0).sum())
        info = {
            "source": "table", "path": str(p), "rows": rows_read, "rows_not_in_gene_list": unmapped,
            "examples_not_in_gene_list": unmapped_examples, "genes_with_values": covered, "genes_imputed": n - covered,
            # several rows of one gene (strains, alleles, replicates) are averaged: say how many
            "genes_with_several_rows": int((rows_per_gene > 1).sum()),
            "rows_averaged": int(np.clip(rows_per_gene - 1, 0, None).sum()),
            "rows_of_other_strains_set_aside": set_aside,
            "rows_of_other_strain_kinds": other_kind,
            "columns": colnames, "skipped_non_numeric_columns": [names[use[k]] for k in range(len(use)) if bad_col[k]],
        }
        return GeneFeatureBlock(values, colnames, info)
