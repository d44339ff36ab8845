"""SGD_features.tab: the ORF gene list and the common-name / alias tables for :class:`GeneMapper`.

The file has 16 tab-separated columns and no header: 1 SGDID, 2 feature type, 3 qualifier
(``Verified``, ``Uncharacterized``, ``Dubious``, possibly ``Verified|silenced_gene``), 4 systematic name,
5 standard name, 6 aliases (``|``-separated), ... .
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from cellgi.data.errors import DataError
from cellgi.data.genes import GeneMapper
from cellgi.data.readers._io import iter_lines

__all__ = ["SgdFeatures", "read_gene_list", "read_sgd_features"]

DEFAULT_QUALIFIERS = ("Verified", "Uncharacterized", "Dubious")


@dataclass
class SgdFeatures:
    """What :func:`read_sgd_features` found.

    Attributes:
        genes: systematic names of the kept features, in file order.
        all_orfs: systematic names of every feature of the requested types (any qualifier).
        names: upper-case standard name -> systematic name.
        aliases: upper-case alias -> systematic name, for aliases naming one feature only.
        ambiguous: aliases naming several features.
        skipped_qualifier: rows of the requested types left out by their qualifier.
    """

    genes: list[str]
    all_orfs: list[str]
    names: dict[str, str]
    aliases: dict[str, str]
    ambiguous: set[str]
    skipped_qualifier: int

    def mapper(self, genes: Iterable[str] | None = None) -> GeneMapper:
        """A :class:`GeneMapper` onto ``genes`` (default: the kept features)."""
        target = self.genes if genes is None else list(genes)
        known = set(self.all_orfs) - set(target)
        return GeneMapper(target, self.names, self.aliases, self.ambiguous, known)


def read_sgd_features(
    path: str | Path,
    qualifiers: Iterable[str] | None = DEFAULT_QUALIFIERS,
    feature_types: Iterable[str] = ("ORF",),
) -> SgdFeatures:
    """Read SGD_features.tab.

    Args:
        path: the file.
        qualifiers: keep features with one of these qualifiers (a ``|``-combined qualifier such as
            ``Verified|silenced_gene`` matches when any part does); ``None`` keeps all.
        feature_types: feature types (column 2) that are genes.

    Raises:
        DataError: a row of a gene feature type with fewer than 6 columns or no systematic name,
            a systematic name listed twice, or no gene at all.
    """
    ftypes = set(feature_types)
    quals = None if qualifiers is None else set(qualifiers)
    genes: list[str] = []
    all_orfs: list[str] = []
    seen: dict[str, int] = {}
    names: dict[str, str] = {}
    alias_to: dict[str, set[str]] = defaultdict(set)
    skipped = 0
    for lineno, line in iter_lines(path, "SGD features file"):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) < 2 or cols[1] not in ftypes:
            continue
        if len(cols) < 6:
            raise DataError(f"expected at least 6 tab-separated columns, found {len(cols)} (truncated row?)", path, lineno)
        orf = cols[3].strip()
        if not orf:
            raise DataError(f"{cols[1]} row without a systematic name (column 4)", path, lineno)
        if orf.upper() in seen:
            raise DataError(
                f"systematic name {orf!r} listed twice (first on line {seen[orf.upper()]}, names compared ignoring case)",
                path,
                lineno,
            )
        seen[orf.upper()] = lineno
        all_orfs.append(orf)
        std = cols[4].strip()
        if std:
            names[std.upper()] = orf
        for a in cols[5].split("|"):
            a = a.strip()
            if a:
                alias_to[a.upper()].add(orf)
        if quals is not None and not (set(cols[2].split("|")) & quals):
            skipped += 1
            continue
        genes.append(orf)
    if not genes:
        raise DataError(f"no {'/'.join(sorted(ftypes))} rows with qualifiers {sorted(quals or [])}", path)
    aliases = {a: next(iter(o)) for a, o in alias_to.items() if len(o) == 1 and a not in names}
    ambiguous = {a for a, o in alias_to.items() if len(o) > 1 and a not in names}
    return SgdFeatures(genes, all_orfs, names, aliases, ambiguous, skipped)


def read_gene_list(path: str | Path) -> list[str]:
    """One gene per line (first whitespace-separated field; ``#`` comments and blank lines skipped).

    Raises:
        DataError: a gene listed twice (case variants such as ``yal001c`` count as the same gene),
            or an empty list.
    """
    genes: list[str] = []
    seen: dict[str, tuple[int, str]] = {}
    for lineno, line in iter_lines(path, "gene list"):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        g = s.split()[0]
        key = g.upper()  # 'YAL001C' and 'yal001c' name one gene: never two nodes
        if key in seen:
            first_line, first = seen[key]
            same = "" if first == g else f" as {first!r}"
            raise DataError(f"gene {g!r} listed twice (first on line {first_line}{same})", path, lineno)
        seen[key] = (lineno, g)
        genes.append(g)
    if not genes:
        raise DataError("gene list is empty", path)
    return genes
