"""Genome-wide SGA screens read as a grid: every query gene x every array gene (format ``sga_grid``).

Two published layouts are read:

- **listing only** (Costanzo et al. 2010, ``sgadata_costanzo2009_*Cutoff*.txt``): 7 tab-separated columns,
  no header -- query strain, query name, array strain, array name, epsilon, sd, p. Only the significant
  interactions are listed; every other pair of a query gene and an array gene was screened and is
  *neutral* (``neutral``, epsilon 0 by default).
- **full matrix** (Costanzo et al. 2016, ``SGA_ExE.txt``, ``SGA_NxN.txt``, ...): a header row
  (``Query Strain ID``, ``Array Strain ID``, ``Genetic interaction score (ε)``, ``P-value``, ...; matched
  case-insensitively, a unique prefix suffices) and every screened pair scored. The neutral value is then
  used only for pairs of the grid the file does not score.

The layout is recognised from the first non-comment line: a header when its score field is not a number.
Strain ids carry an allele suffix after the last ``_`` (``YAL001C_tsq508``, ``YBR002C_damp4``, ``_sn``,
``_dma``); the gene is the part before it, the *allele tag* the suffix without its trailing digits
(``tsq``, ``damp``). What the reader returns (:class:`RawGrid`) is per strain; genes, alleles, reciprocal
and self pairs are resolved by :func:`cellgi.data.grid.map_grid` once identifiers are mapped to genes.
"""

from __future__ import annotations

import math
import re
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from cellgi.data.errors import DataError
from cellgi.data.readers._io import NameInterner, iter_lines, require_rows
from cellgi.data.readers._screen import parse_target
from cellgi.data.readers.base import ScreenFormat
from cellgi.registry import Params, register

__all__ = ["GRID_TARGET", "RawGrid", "SgaGridFormat", "SgaGridParams", "allele_tag", "read_sga_grid", "strain_gene"]

#: the target a grid screen provides
GRID_TARGET = "gene_interaction"
_QUERY = ("query strain id", "query strain")
_ARRAY = ("array strain id", "array strain")
_SCORE = ("genetic interaction score (ε)", "genetic interaction score (epsilon)", "genetic interaction score",
          "adjusted genetic interaction score")
_TAG = re.compile(r"\d+$")


def strain_gene(strain: str) -> str:
    """The gene of a strain id: the part before the last ``_`` (the whole id when there is none)."""
    s = strain.strip()
    return s[: s.rindex("_")] if "_" in s else s


def allele_tag(strain: str) -> str:
    """The allele tag of a strain id: its suffix after the last ``_`` without trailing digits (``tsq``,
    ``damp``, ``sn``, ``dma``); ``""`` for an id without a suffix."""
    s = strain.strip()
    return _TAG.sub("", s[s.rindex("_") + 1 :]).lower() if "_" in s else ""


@dataclass
class RawGrid:
    """The rows of a grid screen, per strain, before identifiers are mapped to genes.

    Attributes:
        path: the file.
        names: distinct gene identifiers (strain ids without their suffix), in order of appearance.
        strains: distinct strain ids; ``strain_name[k]`` indexes ``names``, ``strain_tag[k]`` is the allele tag.
        query: ``[R]`` strain of each row's query; ``array``: ``[R]`` strain of its array.
        value: ``[R]`` the interaction score.
        line: ``[R]`` 1-based input line.
        query_list, array_list: the grid's gene identifiers from ``query_genes``/``array_genes`` files, or
            None (the grid is then every query gene x every array gene of the file).
        layout: ``listing`` (no header) or ``header``.
        filtered: rows left out on purpose, by reason (``no measured target``).
    """

    path: Path
    names: list[str]
    strains: list[str]
    strain_name: np.ndarray
    strain_tag: list[str]
    query: np.ndarray
    array: np.ndarray
    value: np.ndarray
    line: np.ndarray
    query_list: list[str] | None = None
    array_list: list[str] | None = None
    layout: str = "listing"
    filtered: Counter = field(default_factory=Counter)

    @property
    def num_rows(self) -> int:
        return int(self.value.size)

    @property
    def targets(self) -> dict[str, np.ndarray]:
        """Target name -> ``[R]`` values (what the data build checks targets against)."""
        return {GRID_TARGET: self.value}


def _pick(header: list[str], names: tuple[str, ...], override: str | None, what: str, path: Path, line: int) -> int:
    low = [h.strip().lower() for h in header]
    if override is not None:
        key = override.strip().lower()
        if key not in low:
            raise DataError(f"{what} column {override!r} not in the header {header}", path, line)
        return low.index(key)
    for n in names:
        if n in low:
            return low.index(n)
    hits = [i for i, h in enumerate(low) if any(h.startswith(n) for n in names)]
    if len(hits) == 1:
        return hits[0]
    raise DataError(f"no {what} column (looked for {list(names)}) in the header {header}", path, line)


def _read_list(path: Path, what: str) -> list[str]:
    out: list[str] = []
    for _, line in iter_lines(path, what):
        s = line.split("#", 1)[0].strip()
        if s:
            out.append(strain_gene(s.split()[0]))
    if not out:
        raise DataError(f"{what} lists no gene", path)
    return list(dict.fromkeys(out))


def read_sga_grid(
    path: str | Path,
    *,
    query_genes: str | Path | None = None,
    array_genes: str | Path | None = None,
    query_column: str | None = None,
    array_column: str | None = None,
    score_column: str | None = None,
) -> RawGrid:
    """Read a listing-only (Costanzo 2010) or full-matrix (Costanzo 2016) SGA file (see the module doc).

    Args:
        path: the screen (tab-separated; ``.gz`` allowed).
        query_genes, array_genes: optional files of one gene (or strain id) per line defining the grid.
        query_column, array_column, score_column: header names overriding the defaults (header layout).

    Rows whose score is empty/NA are counted (``no measured target``) and left out; a row with too few
    fields, an empty strain id, a strain naming several genes (``A+B``) or a non-numeric score raises a
    :class:`DataError` naming the line.
    """
    p = Path(path)
    names, strains = NameInterner(), NameInterner()
    strain_name = array("q")
    strain_tag: list[str] = []
    q_arr, a_arr, line_arr = array("q"), array("q"), array("q")
    val = array("d")
    filtered: Counter = Counter()
    layout = None
    qi, ai, si = 0, 2, 4
    width = 5

    def strain(s: str, lineno: int) -> int:
        s = s.strip()
        if not s:
            raise DataError("empty strain id", p, lineno)
        n = len(strains.names)
        k = strains.intern(s)
        if k == n:  # a strain not seen before
            g = strain_gene(s)
            if not g or "+" in g:
                raise DataError(f"strain {s!r} does not name one gene (a grid pairs one query and one array gene)",
                                p, lineno)
            strain_name.append(names.intern(g))
            strain_tag.append(allele_tag(s))
        return k

    for lineno, line in iter_lines(p, "SGA screen"):
        if not line.strip() or line.startswith("#"):
            continue
        f = line.split("\t")
        if layout is None:
            first = parse_target(f[4]) if len(f) >= 5 else None
            overrides = (query_column, array_column, score_column) != (None, None, None)
            if first is not None and not math.isnan(first) and not overrides:
                layout = "listing"
            else:
                layout = "header"
                qi = _pick(f, _QUERY, query_column, "query strain", p, lineno)
                ai = _pick(f, _ARRAY, array_column, "array strain", p, lineno)
                si = _pick(f, _SCORE, score_column, "interaction score", p, lineno)
                width = max(qi, ai, si) + 1
                continue
        if len(f) < width:
            raise DataError(f"expected at least {width} tab-separated fields, found {len(f)}", p, lineno)
        v = parse_target(f[si])
        if v is None:
            raise DataError(f"interaction score {f[si]!r} is not a finite number", p, lineno)
        if math.isnan(v):
            filtered["no measured target"] += 1
            continue
        q_arr.append(strain(f[qi], lineno))
        a_arr.append(strain(f[ai], lineno))
        val.append(v)
        line_arr.append(lineno)

    def np_(a: array, dt: type) -> np.ndarray:
        return np.frombuffer(a, dtype=dt).copy() if len(a) else np.zeros(0, dtype=dt)

    raw = RawGrid(
        path=p, names=names.names, strains=strains.names, strain_name=np_(strain_name, np.int64),
        strain_tag=strain_tag, query=np_(q_arr, np.int64), array=np_(a_arr, np.int64), value=np_(val, np.float64),
        line=np_(line_arr, np.int64), layout=layout or "listing", filtered=filtered,
    )
    if query_genes is not None:
        raw.query_list = _read_list(Path(query_genes), "query gene list")
    if array_genes is not None:
        raw.array_list = _read_list(Path(array_genes), "array gene list")
    for lst in (raw.query_list, raw.array_list):
        for g in lst or []:
            names.intern(g)  # raw.names is names.names: the lists' genes are mapped like the rows'
    return require_rows(raw, "no interaction rows")


class SgaGridParams(Params):
    """A genome-wide SGA screen read as the grid of its query x array genes (docs/data.md#sga-grids-format-sga_grid)."""

    neutral: float = Field(0.0, description="score of a grid pair the file does not list (neutral; "
                                            "its true score lies between the listing cutoffs)")
    alleles: Literal["mean"] | list[str] = Field(
        "mean",
        description="how a gene's several strains (alleles) merge: 'mean' averages the listed scores of its "
        "strain pairs; a list of allele tags (e.g. [sn, dma, tsq, damp]) keeps, per gene and side, only "
        "the strain whose tag comes first (ties: smallest strain id)",
    )
    query_genes: str | None = Field(None, description="file of the grid's query genes (one per line); "
                                                      "default: every query gene of the file")
    array_genes: str | None = Field(None, description="file of the grid's array genes; default: every array "
                                                      "gene of the file")
    query_column: str | None = Field(None, description="header layout: query strain column (default Query Strain ID)")
    array_column: str | None = Field(None, description="header layout: array strain column (default Array Strain ID)")
    score_column: str | None = Field(None, description="header layout: score column (default Genetic interaction "
                                                       "score (ε))")

    @field_validator("alleles")
    @classmethod
    def _tags(cls, v: Any) -> Any:
        if isinstance(v, list):
            if not v:
                raise ValueError("alleles: give 'mean' or a non-empty list of allele tags")
            low = [t.strip().lower() for t in v]
            if len(set(low)) != len(low):
                raise ValueError(f"alleles repeats a tag: {v}")
            return low
        return v


@register("screen_format", "sga_grid", summary="genome-wide SGA screen as a query x array grid; unlisted pairs "
          "neutral (Costanzo 2010 listing, Costanzo 2016 full matrix)", params=SgaGridParams)
class SgaGridFormat(ScreenFormat[SgaGridParams]):
    """Costanzo 2010/2016 SGA files (see :func:`read_sga_grid`); ``query_genes``/``array_genes`` are inputs too."""

    path_fields = ("path", "query_genes", "array_genes")
    yields = RawGrid

    def read(self, spec: SgaGridParams, files: dict[str, Path]) -> RawGrid:
        return read_sga_grid(files["path"], query_genes=files.get("query_genes"),
                             array_genes=files.get("array_genes"), query_column=spec.query_column,
                             array_column=spec.array_column, score_column=spec.score_column)
