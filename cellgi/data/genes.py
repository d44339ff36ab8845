"""Mapping gene identifiers of any source to the ORF names of the gene list, and counting failures.

Sources spell genes differently: systematic names (``YKL112W``), case variants (``YKL112w``), STRING
ids (``4932.YKL112W``), common names and aliases (``ABF1``, ``Abf1``). :class:`GeneMapper` resolves all
of them to the gene list; what it cannot resolve is returned with a reason and counted in an
:class:`UnmappedLog`, never dropped silently.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from cellgi.data.errors import DataError

__all__ = ["GeneMapper", "UnmappedLog", "REASON_AMBIGUOUS", "REASON_NOT_IN_GENES", "REASON_UNKNOWN"]

REASON_UNKNOWN = "unknown identifier"
REASON_AMBIGUOUS = "ambiguous alias"
REASON_NOT_IN_GENES = "not in gene list"

_TAXON = re.compile(r"^\d+\.(.+)$")  # STRING ids: 4932.YKL112W


class GeneMapper:
    """Resolve identifiers to the genes of a gene list.

    Resolution order for an identifier ``x`` (surrounding whitespace ignored):

    1. ``x`` itself, then ``x.upper()``, is a gene of the list;
    2. a taxon prefix ``<digits>.`` is stripped (``4932.YKL112W``) and step 1 repeated;
    3. ``x.upper()`` is a standard name (SGD column 5) of an ORF, then an alias (column 6).
       Standard names win over aliases; an alias shared by several ORFs is *ambiguous* and not mapped.

    Args:
        genes: the gene list (canonical names; graph node order).
        names: upper-case standard name -> ORF (e.g. from SGD_features.tab column 5).
        aliases: upper-case alias -> ORF, for aliases naming exactly one ORF (column 6).
        ambiguous: upper-case aliases naming several ORFs (reported, never guessed).
        known: ORF names known to exist but not in ``genes`` (reported as ``not in gene list``).

    Raises:
        DataError: ``genes`` names one gene twice, also as case variants (``YAL001C``, ``yal001c``).
    """

    def __init__(
        self,
        genes: Iterable[str],
        names: Mapping[str, str] | None = None,
        aliases: Mapping[str, str] | None = None,
        ambiguous: Iterable[str] = (),
        known: Iterable[str] = (),
    ):
        self.genes: list[str] = list(genes)
        self._index = {g: i for i, g in enumerate(self.genes)}
        self._upper: dict[str, str] = {}
        for g in self.genes:
            first = self._upper.get(g.upper())
            self._upper[g.upper()] = g
            if first is not None:  # 'YAL001C' and 'yal001c' (or a repeat) would become two nodes of one gene
                what = "twice" if first == g else f"twice, as {first!r} and {g!r} (names are compared ignoring case)"
                raise DataError(f"the gene list names gene {g!r} {what}")
        self.names: dict[str, str] = {k.upper(): v for k, v in (names or {}).items()}
        self.aliases: dict[str, str] = {k.upper(): v for k, v in (aliases or {}).items()}
        self.ambiguous: set[str] = {a.upper() for a in ambiguous}
        self.known: set[str] = {k.upper() for k in known} - set(self._upper)
        self._cache: dict[str, tuple[str | None, str]] = {}

    def __len__(self) -> int:
        return len(self.genes)

    def _direct(self, x: str) -> str | None:
        if x in self._index:
            return x
        return self._upper.get(x.upper())

    def resolve(self, ident: str) -> tuple[str | None, str]:
        """``(gene, "")`` when mapped, else ``(None, reason)``."""
        hit = self._cache.get(ident)
        if hit is not None:
            return hit
        out = self._resolve(ident)
        self._cache[ident] = out
        return out

    def _resolve(self, ident: str) -> tuple[str | None, str]:
        x = ident.strip()
        if not x:
            return None, REASON_UNKNOWN
        g = self._direct(x)
        if g is not None:
            return g, ""
        m = _TAXON.match(x)
        if m:
            x = m.group(1)
            g = self._direct(x)
            if g is not None:
                return g, ""
        u = x.upper()
        orf = self.names.get(u) or self.aliases.get(u)
        if orf is not None:
            g = self._direct(orf)
            return (g, "") if g is not None else (None, REASON_NOT_IN_GENES)
        if u in self.ambiguous:
            return None, REASON_AMBIGUOUS
        if u in self.known:
            return None, REASON_NOT_IN_GENES
        return None, REASON_UNKNOWN

    def map(self, ident: str) -> str | None:
        """The gene name, or None."""
        return self.resolve(ident)[0]

    def index(self, ident: str) -> int:
        """Gene index of an identifier, ``-1`` when unmapped."""
        g = self.resolve(ident)[0]
        return -1 if g is None else self._index[g]

    def indices(self, idents: Iterable[str]) -> list[int]:
        """Gene indices (``-1`` = unmapped) of many identifiers."""
        return [self.index(x) for x in idents]

    def with_genes(self, genes: Iterable[str]) -> "GeneMapper":
        """The same name tables against another gene list (e.g. the union of inputs)."""
        genes = list(genes)
        known = (self.known | set(self._upper)) - {g.upper() for g in genes}
        return GeneMapper(genes, self.names, self.aliases, self.ambiguous, known)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (stored in checkpoints so predictions can map common names)."""
        return {
            "genes": list(self.genes),
            "names": dict(self.names),
            "aliases": dict(self.aliases),
            "ambiguous": sorted(self.ambiguous),
            "known": sorted(self.known),
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> "GeneMapper":
        """Inverse of :meth:`to_dict`."""
        return cls(
            state["genes"],
            state.get("names", {}),
            state.get("aliases", {}),
            state.get("ambiguous", ()),
            state.get("known", ()),
        )

    def __repr__(self) -> str:
        return f"GeneMapper(genes={len(self.genes)}, names={len(self.names)}, aliases={len(self.aliases)})"


@dataclass
class UnmappedLog:
    """Identifiers of one source that could not be mapped: how many rows each affected, and why.

    Attributes:
        source: what was read (file path or ``graph <name>``).
        rows: identifier -> number of input rows it made unusable.
        reasons: identifier -> reason (``unknown identifier``, ``ambiguous alias``, ...).
        first_line: identifier -> first input line it appeared on (when known).
    """

    source: str
    rows: Counter = field(default_factory=Counter)
    reasons: dict[str, str] = field(default_factory=dict)
    first_line: dict[str, int] = field(default_factory=dict)

    def add(self, ident: str, reason: str, line: int | None = None, count: int = 1) -> None:
        self.rows[ident] += count
        self.reasons.setdefault(ident, reason)
        if line is not None:
            self.first_line.setdefault(ident, line)

    @property
    def num_identifiers(self) -> int:
        return len(self.rows)

    def examples(self, n: int = 5) -> list[str]:
        """The ``n`` identifiers affecting the most rows."""
        return [k for k, _ in self.rows.most_common(n)]

    def to_dict(self, limit: int | None = 20) -> dict[str, Any]:
        """``{source, identifiers, rows, by_reason, items: [{id, rows, reason, line}]}`` (``limit`` items)."""
        by_reason = Counter(self.reasons.values())
        items = [
            {"id": k, "rows": int(c), "reason": self.reasons[k], "line": self.first_line.get(k)}
            for k, c in self.rows.most_common(limit)
        ]
        return {
            "source": self.source,
            "identifiers": self.num_identifiers,
            "rows": int(sum(self.rows.values())),
            "by_reason": dict(by_reason),
            "items": items,
        }
