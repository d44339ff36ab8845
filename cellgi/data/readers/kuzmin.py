"""Scored SGA screens in the layout of Kuzmin et al. 2018 (Science), Data S1.

Columns (matched case-insensitively): ``Query Strain ID``, ``Array Strain ID``, the adjusted
interaction score (``Adjusted genetic interaction score (epsilon or tau)``), ``P-value`` and the
double/triple mutant fitness (``Double/triple mutant fitness`` or ``Combined mutant fitness``).

Strain ids carry a suffix: ``YAL015C+YDL227C_tm461`` is a double-mutant query of YAL015C and
YDL227C, ``YBL007C_dma91`` an array strain; the suffix after the last ``_`` is stripped and the rest
split on ``+``. YDL227C (HO) is a neutral marker: a query ``X+YDL227C`` against array ``Y`` is a
digenic (X, Y) measurement (epsilon); otherwise ``A+B`` x ``C`` is trigenic (A, B, C) (tau).

Targets: ``gene_interaction`` (the score) and ``fitness`` (the mutant fitness).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Literal

from pydantic import Field

from cellgi.data.errors import DataError
from cellgi.data.readers._screen import RawScreen, RawScreenBuilder, parse_target
from cellgi.data.readers._io import require_rows
from cellgi.data.readers._table import read_table
from cellgi.data.readers.base import ScreenFormat
from cellgi.registry import Params, register

__all__ = ["KUZMIN_TARGETS", "read_kuzmin", "read_strain_table", "strain_genes"]

KUZMIN_TARGETS = ("gene_interaction", "fitness")
_QUERY = ("query strain id",)
_ARRAY = ("array strain id",)
_SCORE = (
    "adjusted genetic interaction score (epsilon or tau)",
    "adjusted genetic interaction score",
    "genetic interaction score (epsilon or tau)",
    "genetic interaction score",
)
_PVALUE = ("p-value", "p value", "pvalue")
_FITNESS = ("double/triple mutant fitness", "combined mutant fitness", "double mutant fitness", "triple mutant fitness")


def strain_genes(strain: str, strains: dict[str, str] | None = None) -> list[str]:
    """Genes of a strain id: table lookup first, else strip the suffix after the last ``_`` and split on ``+``."""
    s = strain.strip()
    if strains is not None and s in strains:
        s = strains[s]
    elif "_" in s:
        s = s[: s.rindex("_")]
    return [g.strip() for g in s.split("+")]


def read_strain_table(path: str | Path) -> dict[str, str]:
    """Strain id -> ORF (``+``-joined for multi-gene strains) from a TSV with ``Strain`` and ``Orf`` columns."""
    t = read_table(path, "\t", "strain table")
    si, oi = t.column("strain", "strain column"), t.column("orf", "ORF column")
    out: dict[str, str] = {}
    for lineno, f in t.rows:
        s, o = f[si].strip(), f[oi].strip()
        if not s or not o:
            raise DataError("empty strain or ORF field", path, lineno)
        out[s] = o
    return out


def _pick(t, names: tuple[str, ...], override: str | None, what: str, required: bool) -> int | None:
    if override is not None:
        return t.column(override, what)
    i = t.find(*names)
    if i is None:
        # a longer variant of the expected name, e.g. "Adjusted genetic interaction score (tau)"
        low = [h.strip().lower() for h in t.header]
        hits = [j for j, h in enumerate(low) if any(h.startswith(n) for n in names)]
        i = hits[0] if len(hits) == 1 else None
    if i is None and required:
        raise DataError(f"no {what} column (looked for {list(names)}) in the header {t.header}", t.path, t.header_line)
    return i


def read_kuzmin(
    path: str | Path,
    *,
    neutral_marker: str = "YDL227C",
    strains: dict[str, str] | None = None,
    weight_from_pvalue: bool = False,
    kinds: Iterable[str] = ("digenic", "trigenic"),
    score_column: str | None = None,
    fitness_column: str | None = None,
    pvalue_column: str | None = None,
) -> RawScreen:
    """Read a Data S1-layout screen (tab-separated; ``.csv`` comma-separated; ``.gz`` allowed).

    Args:
        path: the screen file.
        neutral_marker: the query partner marking digenic rows (HO, YDL227C).
        strains: optional strain id -> ORF table (:func:`read_strain_table`).
        weight_from_pvalue: weight ``-log10(p)`` clipped to [0.1, 10] (1 where p is missing).
        kinds: which of ``digenic``/``trigenic`` to keep (others counted as ``kind filter``).
        score_column, fitness_column, pvalue_column: header names overriding the defaults.

    Rows are counted, not raised, when: a gene repeats within a sample (``gene repeated in
    sample``), the kind is filtered, or no target is measured. Malformed rows raise :class:`DataError`.
    """
    keep = set(kinds)
    marker = neutral_marker.upper()
    t = read_table(path, None, "Kuzmin screen")
    qi = _pick(t, _QUERY, None, "query strain", True)
    ai = _pick(t, _ARRAY, None, "array strain", True)
    si = _pick(t, _SCORE, score_column, "interaction score", True)
    fi = _pick(t, _FITNESS, fitness_column, "mutant fitness", False)
    tcols = {name: col for name, col in (("gene_interaction", si), ("fitness", fi)) if col is not None}
    pi = _pick(t, _PVALUE, pvalue_column, "p-value", weight_from_pvalue)
    b = RawScreenBuilder(path, KUZMIN_TARGETS, weighted=weight_from_pvalue)
    for lineno, f in t.rows:
        q, a = f[qi].strip(), f[ai].strip()  # type: ignore[index]
        if not q or not a:
            raise DataError("empty query or array strain id", path, lineno)
        qg, ag = strain_genes(q, strains), strain_genes(a, strains)
        if any(not g for g in qg + ag):
            raise DataError(f"malformed strain id {q!r} or {a!r}", path, lineno)
        digenic = any(g.upper() == marker for g in qg)
        genes = [g for g in qg if g.upper() != marker] + ag
        kind = "digenic" if digenic else "trigenic"
        if kind not in keep:
            b.filtered["kind filter"] += 1
            continue
        values = b.measured(genes, f, t.header, tcols, path, lineno)
        if values is None:
            continue
        w = None
        if weight_from_pvalue:
            p = parse_target(f[pi])  # type: ignore[index]
            if p is None or (not math.isnan(p) and not 0.0 <= p <= 1.0):
                raise DataError(f"p-value {f[pi]!r} is not a number in [0, 1]", path, lineno)  # type: ignore[index]
            w = 1.0 if math.isnan(p) else min(10.0, max(0.1, -math.log10(max(p, 1e-300))))
        b.add(genes, values, lineno, w)
    return require_rows(b.build(), "no rows after the header")


class KuzminParams(Params):
    """Kuzmin et al. 2018 Data S1 layout: query A+B_suffix x array C_suffix."""

    neutral_marker: str = Field("YDL227C", description="query partner that marks a digenic row (HO)")
    strains: str | None = Field(None, description="optional strain -> ORF table")
    weight_from_pvalue: bool = Field(False, description="per-sample weight -log10(p), clipped to [0.1, 10]")
    kinds: list[Literal["digenic", "trigenic"]] = Field(
        default_factory=lambda: ["digenic", "trigenic"], description="sample kinds kept"
    )
    score_column: str | None = Field(None, description="interaction score header (default: the Data S1 name)")
    fitness_column: str | None = Field(None, description="mutant fitness header (default: the Data S1 name)")
    pvalue_column: str | None = Field(None, description="p-value header (default: P-value)")


@register("screen_format", "kuzmin", summary="Kuzmin 2018 Data S1 screen layout (query x array strains)",
          params=KuzminParams)
class KuzminFormat(ScreenFormat[KuzminParams]):
    """Data S1 layout (see :func:`read_kuzmin`); ``strains`` is a second input file when set."""

    path_fields = ("path", "strains")

    def read(self, spec: KuzminParams, files: dict[str, Path]) -> RawScreen:
        strains = read_strain_table(files["strains"]) if "strains" in files else None
        return read_kuzmin(
            files["path"],
            neutral_marker=spec.neutral_marker,
            strains=strains,
            weight_from_pvalue=spec.weight_from_pvalue,
            kinds=spec.kinds,
            score_column=spec.score_column,
            fitness_column=spec.fitness_column,
            pvalue_column=spec.pvalue_column,
        )
