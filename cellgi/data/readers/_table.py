"""Column-named tables (CSV, TSV, Parquet) read as rows of strings with their line numbers."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator

from cellgi.data.errors import DataError
from cellgi.data.readers._io import check_file, iter_lines

__all__ = ["Table", "guess_sep", "read_table"]


def guess_sep(path: str | Path) -> str:
    """``,`` for ``.csv`` (also ``.csv.gz``), else tab."""
    name = Path(path).name.lower().removesuffix(".gz")
    return "," if name.endswith(".csv") else "\t"


class Table:
    """A header and an iterator of ``(line, fields)`` rows; ``column(name)`` finds a column index.

    Column names match case-insensitively (surrounding whitespace ignored); a name that is looked up and
    appears more than once is an error.
    """

    def __init__(self, path: Path, header: list[str], rows: Iterator[tuple[int, list[str]]], header_line: int):
        self.path = path
        self.header = header
        self.rows = rows
        self.header_line = header_line
        self._lower = [h.strip().lower() for h in header]

    def find(self, *names: str) -> int | None:
        """Index of the first of ``names`` present, or None."""
        for n in names:
            key = n.strip().lower()
            if key in self._lower:
                at = [i for i, h in enumerate(self._lower) if h == key]
                if len(at) > 1:  # never pick one of two same-named columns silently
                    cols = " and ".join(str(i + 1) for i in at)
                    raise DataError(
                        f"column {n!r} appears {len(at)} times in the header (columns {cols}); rename the copies",
                        self.path,
                        self.header_line,
                    )
                return at[0]
        return None

    def column(self, name: str, what: str = "column") -> int:
        """Index of ``name``; a :class:`DataError` listing the header when it is absent."""
        i = self.find(name)
        if i is None:
            raise DataError(f"{what} {name!r} not in the header {self.header}", self.path, self.header_line)
        return i


def read_table(path: str | Path, sep: str | None = None, what: str = "table") -> Table:
    """Open a table with a header row. ``.parquet`` needs pandas (``pip install cellgi[parquet]``).

    Rows are checked lazily: a row with a different number of fields than the header raises a
    :class:`DataError` naming the line when it is reached.
    """
    p = check_file(path, what)
    if p.suffix.lower() in (".parquet", ".pq"):
        return _read_parquet(p, what)
    delim = sep if sep is not None else guess_sep(p)
    lines = iter_lines(p, what)

    def logical() -> Iterator[tuple[int, str]]:
        for lineno, line in lines:
            if line.strip() and not line.startswith("#"):
                yield lineno, line

    src = logical()
    try:
        header_line, first = next(src)
    except StopIteration:
        raise DataError("empty file (no header row)", p) from None
    header = next(csv.reader([first], delimiter=delim))
    width = len(header)

    def rows() -> Iterator[tuple[int, list[str]]]:
        for lineno, line in src:
            try:
                f = next(csv.reader([line], delimiter=delim))
            except csv.Error as exc:
                raise DataError(f"malformed row: {exc}", p, lineno) from None
            if len(f) != width:
                raise DataError(f"expected {width} fields like the header, found {len(f)}", p, lineno)
            yield lineno, f

    return Table(p, header, rows(), header_line)


def _read_parquet(p: Path, what: str) -> Table:
    try:  # imported here: pandas is optional for cellgi[parquet] and takes ~0.8 s to import
        import pandas as pd
    except ImportError:
        raise DataError(
            "reading Parquet needs pandas and pyarrow: pip install 'cellgi[parquet]' (or convert to TSV)", p
        ) from None
    try:
        df = pd.read_parquet(p)
    except Exception as exc:  # noqa: BLE001 - any pyarrow/pandas failure is a bad file for the user
        raise DataError(f"cannot read Parquet {what}: {type(exc).__name__}: {exc}", p) from None
    header = [str(c) for c in df.columns]
    cols = [df[c].astype(object).where(df[c].notna(), "").astype(str).tolist() for c in df.columns]

    def rows() -> Iterator[tuple[int, list[str]]]:
        for i in range(len(df)):
            yield i + 2, [c[i] for c in cols]  # "line" = row number counting the header as line 1

    return Table(p, header, rows(), 1)
