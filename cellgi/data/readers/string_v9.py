"""STRING v9.1 channel files as processed for DANGO: ``id_a id_b weight`` with 1-based ids into genes.txt."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from cellgi.data.errors import DataError
from cellgi.data.readers._edges import RawEdges, RawEdgesBuilder
from cellgi.data.readers._io import iter_lines, parse_float, require_rows
from cellgi.data.readers.sgd import read_gene_list
from cellgi.data.readers.base import GraphFormat
from cellgi.registry import Params, register

__all__ = ["read_string_v9"]


def read_string_v9(path: str | Path, genes_path: str | Path) -> RawEdges:
    """Read one STRING v9.1 channel.

    Args:
        path: whitespace-separated ``id_a id_b weight`` rows; ids are 1-based line numbers of
            ``genes_path``; weights in (0, 1].
        genes_path: the genes.txt the ids index (one ORF per line).

    Raises:
        DataError: a row without three fields, a non-integer id, an id outside ``1..len(genes)``,
            a non-numeric weight (all naming file and line), or an empty file.
    """
    genes = read_gene_list(genes_path)
    b = RawEdgesBuilder(path, weighted=True)
    for g in genes:
        b.intern(g)
    n = len(genes)
    for lineno, line in iter_lines(path, "STRING v9.1 file"):
        f = line.split()
        if not f or f[0].startswith("#"):
            continue
        if len(f) != 3:
            raise DataError(f"expected 'id_a id_b weight', found {len(f)} field(s)", path, lineno)
        try:
            ia, ib = int(f[0]), int(f[1])
        except ValueError:
            raise DataError(f"ids must be integers, got {f[0]!r} {f[1]!r}", path, lineno) from None
        for i in (ia, ib):
            if not 1 <= i <= n:
                raise DataError(f"id {i} is outside 1..{n} (the genes of {genes_path})", path, lineno)
        b.add_ids(ia - 1, ib - 1, lineno, parse_float(f[2], path, lineno, "weight"))
    return require_rows(b.build(), "no edges (empty file?)")


class StringV9Params(Params):
    genes_path: str = Field(description="genes.txt that the 1-based ids index")


@register("graph_format", "string_v9", summary="STRING v9.1 'id_a id_b weight' + genes.txt (1-based ids)",
          params=StringV9Params)
class StringV9Format(GraphFormat[StringV9Params]):
    """STRING v9.1 layout (see :func:`read_string_v9`)."""

    path_fields = ("path", "genes_path")

    def read(self, spec: StringV9Params, files: dict[str, Path]) -> RawEdges:
        return read_string_v9(files["path"], files["genes_path"])
