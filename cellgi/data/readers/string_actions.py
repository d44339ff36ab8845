"""STRING v11 ``protein.actions`` TSV: typed links with a direction flag.

Header: ``item_id_a item_id_b mode action is_directional a_is_acting score`` (ids ``4932.<ORF>``,
score 0-1000). Directional rows (``is_directional = t``) point from the acting protein to the other
one; a directed graph keeps that orientation and stores non-directional rows in both directions. An
undirected graph ignores orientation. Weights are ``score / 1000``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Protocol

from pydantic import Field

from cellgi.data.errors import DataError
from cellgi.data.readers._edges import RawEdges, RawEdgesBuilder
from cellgi.data.readers._io import iter_lines, require_rows
from cellgi.data.readers.base import GraphFormat
from cellgi.registry import Params, register

__all__ = ["read_string_actions"]

_COLUMNS = ("item_id_a", "item_id_b", "mode", "action", "is_directional", "a_is_acting", "score")
_TRUE = {"t", "true", "1"}
_FALSE = {"f", "false", "0", ""}


def read_string_actions(
    path: str | Path,
    *,
    directed: bool = False,
    min_score: int = 0,
    modes: Iterable[str] | None = None,
    actions: Iterable[str] | None = None,
) -> RawEdges:
    """Read a STRING actions file.

    Args:
        path: the TSV (``.gz`` allowed).
        directed: honour ``is_directional``/``a_is_acting`` (see module doc).
        min_score: rows with a lower score are left out (counted as ``score < min_score``).
        modes: keep only these modes (others counted as ``mode filter``).
        actions: keep only these actions (others counted as ``action filter``; an empty action
            column never matches).

    Raises:
        DataError: missing header columns, a row with the wrong number of fields, a bad score or
            flag (naming file and line), or no rows at all.
    """
    keep_modes = None if modes is None else set(modes)
    keep_actions = None if actions is None else set(actions)
    b = RawEdgesBuilder(path, weighted=True)
    add = b.add  # bound once: this loop runs over ~10^6 lines
    filtered = b.filtered
    col: dict[str, int] | None = None
    width = ia = ib = im = iact = idir = iacting = isc = 0
    true_false = _TRUE | _FALSE
    for lineno, line in iter_lines(path, "STRING actions file"):
        if not line.strip():
            continue
        f = line.split("\t")
        if col is None:
            names = [c.strip().lower() for c in f]
            missing = [c for c in _COLUMNS if c not in names]
            if missing:
                raise DataError(f"header lacks column(s) {missing}; expected {list(_COLUMNS)}", path, lineno)
            col = {c: names.index(c) for c in _COLUMNS}
            ia, ib, im, iact = col["item_id_a"], col["item_id_b"], col["mode"], col["action"]
            idir, iacting, isc = col["is_directional"], col["a_is_acting"], col["score"]
            width = len(names)
            continue
        if len(f) != width:
            raise DataError(f"expected {width} tab-separated fields, found {len(f)}", path, lineno)
        try:
            score = int(f[isc])
        except ValueError:
            raise DataError(f"score {f[isc]!r} is not an integer", path, lineno) from None
        if score < min_score:
            filtered["score < min_score"] += 1
            continue
        if keep_modes is not None and f[im] not in keep_modes:
            filtered["mode filter"] += 1
            continue
        if keep_actions is not None and f[iact] not in keep_actions:
            filtered["action filter"] += 1
            continue
        a, c = f[ia].strip(), f[ib].strip()
        w = score / 1000.0
        if not directed:
            add(a, c, lineno, w)
            continue
        flag, acting = f[idir].strip().lower(), f[iacting].strip().lower()
        if flag not in true_false or acting not in true_false:
            raise DataError(f"is_directional/a_is_acting must be t or f, got {flag!r}/{acting!r}", path, lineno)
        if flag in _TRUE:
            if acting in _TRUE:
                add(a, c, lineno, w)
            else:
                add(c, a, lineno, w)
        else:
            add(a, c, lineno, w)
            add(c, a, lineno, w)
    if col is None:
        raise DataError("empty file (no header)", path)
    return require_rows(b.build(), "no rows after the header")


class StringActionsParams(Params):
    min_score: int = Field(0, ge=0, le=1000, description="STRING score threshold (0-1000)")
    modes: list[str] | None = Field(None, description="keep only these modes (binding, activation, ...)")
    actions: list[str] | None = Field(None, description="keep only these actions")


class _StringActionsEntry(Protocol):
    """The fields of a ``string_actions`` entry the reader reads (its params and the shared ``directed``)."""

    directed: bool
    min_score: int
    modes: list[str] | None
    actions: list[str] | None


@register("graph_format", "string_actions",
          summary="STRING v11 actions TSV ('4932.' ids, score, mode, direction)", params=StringActionsParams)
class StringActionsFormat(GraphFormat[_StringActionsEntry]):
    """STRING actions layout (see :func:`read_string_actions`)."""

    def read(self, spec: _StringActionsEntry, files: dict[str, Path]) -> RawEdges:
        return read_string_actions(
            files["path"], directed=spec.directed, min_score=spec.min_score, modes=spec.modes, actions=spec.actions
        )
