"""Transcription factor -> target tables: ``TF<TAB>target`` per line (YEASTRACT-style export).

Both columns may be common names (``Abf1``) or mixed-case ORFs (``YKL112w``); the
:class:`~cellgi.data.genes.GeneMapper` resolves them. An optional header row whose first field is
``tf``/``regulator``/``source`` is skipped.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from cellgi.data.errors import DataError
from cellgi.data.readers._edges import RawEdges, RawEdgesBuilder
from cellgi.data.readers._io import iter_lines, require_rows
from cellgi.data.readers.base import GraphFormat
from cellgi.registry import Params, register

__all__ = ["read_regulatory"]

_HEADER_WORDS = {"tf", "regulator", "source", "transcription_factor", "tf_common_name"}


def read_regulatory(path: str | Path) -> RawEdges:
    """Read TF -> target rows (tab-separated; whitespace when a line has no tab).

    Raises:
        DataError: a row without exactly two fields (file and line), or no rows.
    """
    b = RawEdgesBuilder(path, weighted=False)
    first = True
    for lineno, line in iter_lines(path, "regulatory table"):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        f = [x.strip() for x in line.split("\t")] if "\t" in line else line.split()
        if first:
            first = False
            if f and f[0].lower() in _HEADER_WORDS:
                continue
        if len(f) != 2 or not f[0] or not f[1]:
            raise DataError(f"expected 'TF<TAB>target', found {len(f)} field(s)", path, lineno)
        b.add(f[0], f[1], lineno)
    return require_rows(b.build(), "no rows (empty file?)")


class RegulatoryParams(Params):
    directed: bool = Field(True, description="regulation is directed (TF -> target)")


@register("graph_format", "regulatory", summary="'TF<TAB>target' lines (common names, mixed case), directed",
          params=RegulatoryParams)
class RegulatoryFormat(GraphFormat[RegulatoryParams]):
    """Transcription-factor -> target layout (see :func:`read_regulatory`)."""

    def read(self, spec: RegulatoryParams, files: dict[str, Path]) -> RawEdges:
        return read_regulatory(files["path"])
