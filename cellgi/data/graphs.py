"""From a ``data.graphs`` entry to an :class:`EdgeType`: read, map identifiers, filter, deduplicate."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import numpy as np

from cellgi.data.cellgraph import DuplicateEdgeError, EdgeType, normalize_edges
from cellgi.data.errors import DataError
from cellgi.data.genes import GeneMapper, UnmappedLog
from cellgi.data.readers import RawEdges
from cellgi.data.readers.base import format_input_files, read_entry
from cellgi.spec.data import GraphEntryBase

__all__ = ["graph_input_files", "load_graph", "map_edges", "read_raw_edges"]


def graph_input_files(spec: GraphEntryBase, root: str | Path) -> list[Path]:
    """Every file a ``data.graphs`` entry reads (for cache keys): what its format declares."""
    return format_input_files("graph_format", spec, root)


def read_raw_edges(spec: GraphEntryBase, root: str | Path) -> RawEdges:
    """Read a ``data.graphs`` entry with the reader of its format (built-in or plugin)."""
    return cast(RawEdges, read_entry("graph_format", spec, root))  # checked against GraphFormat.yields


def map_edges(raw: RawEdges, mapper: GeneMapper, log: UnmappedLog) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map identifiers to gene indices; rows with an unmapped end are counted in ``log`` and dropped.

    Returns:
        ``(src, dst, kept_rows)`` gene indices of the kept rows and their row numbers in ``raw``.
    """
    code = np.asarray(mapper.indices(raw.names), dtype=np.int64)
    s, d = code[raw.src], code[raw.dst]
    bad_s, bad_d = s < 0, d < 0
    bad = bad_s | bad_d
    if bad.any():
        sel_d = bad_d & ~(bad_s & (raw.src == raw.dst))  # an unmapped self-pair counts once
        ids = np.concatenate([raw.src[bad_s], raw.dst[sel_d]])
        rows = np.concatenate([np.flatnonzero(bad_s), np.flatnonzero(sel_d)])
        order = np.lexsort((rows, ids))
        ids, rows = ids[order], rows[order]
        uniq, first, counts = np.unique(ids, return_index=True, return_counts=True)
        for u, f0, c in zip(uniq.tolist(), first.tolist(), counts.tolist()):
            name = raw.names[u]
            log.add(name, mapper.resolve(name)[1], int(raw.line[rows[f0]]), int(c))
    kept = np.flatnonzero(~bad)
    return s[kept], d[kept], kept


def load_graph(
    spec: GraphEntryBase, root: str | Path, mapper: GeneMapper, raw: RawEdges | None = None
) -> tuple[EdgeType, UnmappedLog, dict[str, Any]]:
    """Read one ``data.graphs`` entry into an :class:`EdgeType` over ``mapper.genes``.

    ``raw``: rows already read with :func:`read_raw_edges` (the file is read when None).

    Returns:
        ``(edge_type, unmapped_log, report)`` where ``report`` counts rows read, filtered, unmapped,
        below ``min_weight``, self-loops dropped, duplicates merged, and the stored edges.

    Raises:
        DataError: any reader error; a non-finite weight; repeated edges under ``duplicates: error``
            (naming the line); no edge left after mapping.
    """
    if raw is None:
        raw = read_raw_edges(spec, root)
    log = UnmappedLog(f"graph {spec.name} ({raw.path.name})")
    s, d, kept = map_edges(raw, mapper, log)
    w = None if raw.weight is None else raw.weight[kept]
    lines = raw.line[kept]
    if w is not None and not np.isfinite(w).all():
        i = int(np.flatnonzero(~np.isfinite(w))[0])
        raise DataError("weight is not finite", raw.path, int(lines[i]))
    below = 0
    if spec.min_weight is not None:
        if w is None:
            raise DataError(f"graph {spec.name!r}: min_weight is set but the file has no weights", raw.path)
        ok = w >= spec.min_weight
        below = int((~ok).sum())
        s, d, w, lines = s[ok], d[ok], w[ok], lines[ok]
    try:
        ei, ew, stats = normalize_edges(
            s, d, len(mapper.genes), directed=spec.directed, weight=w,
            self_loops=spec.self_loops, duplicates=spec.duplicates, name=spec.name,
        )
    except DuplicateEdgeError as exc:
        raise DataError(
            f"graph {spec.name!r}: {exc.count} repeated edge(s); this line repeats an earlier one "
            "(duplicates policy is 'error')",
            raw.path,
            int(lines[exc.row]),
        ) from None
    if ei.shape[1] == 0:
        why = []
        if log.num_identifiers:
            why.append(f"{raw.num_rows - kept.size} rows with unmapped identifiers, e.g. {log.examples(3)}")
        if below:
            why.append(f"{below} rows below min_weight {spec.min_weight}")
        if stats.self_loops_dropped:
            why.append(f"{stats.self_loops_dropped} self-loops dropped (a gene paired with itself; self_loops: {spec.self_loops})")
        if not why:
            why.append("the file has no edge rows")
        raise DataError(
            f"graph {spec.name!r}: no edge left after mapping identifiers of {raw.num_rows} rows: " + "; ".join(why),
            raw.path,
        )
    report = {
        "name": spec.name,
        "format": spec.format,
        "path": str(raw.path),
        "directed": spec.directed,
        "rows": raw.num_rows,
        "filtered": dict(raw.filtered),
        "unmapped_rows": int(raw.num_rows - kept.size),
        "below_min_weight": below,
        "self_loops_dropped": stats.self_loops_dropped,
        "duplicates_merged": stats.duplicates_merged,
        "reverse_merged": stats.reverse_merged,
        "edges": int(ei.shape[1]),
        "weighted": ew is not None,
    }
    return EdgeType(spec.name, spec.directed, ei, ew), log, report


