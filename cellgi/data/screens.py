"""From a ``data.screens`` entry (or any screen file) to a :class:`PerturbationDataset` over a gene list."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence, cast

import numpy as np
import torch

from cellgi.data.errors import DataError
from cellgi.data.genes import GeneMapper, UnmappedLog
from cellgi.data.perturbations import DuplicateStats, PerturbationDataset, merge_duplicates
from cellgi.data.readers import RawScreen
from cellgi.data.readers.base import format_input_files, read_entry
from cellgi.data.readers.sga_grid import RawGrid
from cellgi.spec.data import ScreenEntryBase, screen_entry

__all__ = ["ScreenLoad", "load_screen", "map_screen", "read_raw_screen", "screen_input_files"]


def screen_input_files(spec: ScreenEntryBase, root: str | Path) -> list[Path]:
    """Every file a ``data.screens`` entry reads (for cache keys): what its format declares."""
    return format_input_files("screen_format", spec, root)


def read_raw_screen(spec: ScreenEntryBase, root: str | Path) -> RawScreen | RawGrid:
    """Read a ``data.screens`` entry with the reader of its format (built-in or plugin): rows, or a grid
    (``sga_grid``)."""
    return cast("RawScreen | RawGrid", read_entry("screen_format", spec, root))  # checked against its yields


@dataclass
class ScreenLoad:
    """A screen mapped to a gene list.

    Attributes:
        dataset: the kept samples.
        unmapped: identifiers that could not be mapped (rows they made unusable, reasons).
        n_rows: samples read (after reader filters).
        n_unmapped: samples dropped because a gene could not be mapped.
        reasons: dropped or filtered rows by reason (``unknown identifier``, ``kind filter``, ...).
        duplicates: repeated gene sets and the policy applied.
        missing_targets: requested targets this file does not provide.
    """

    dataset: PerturbationDataset
    unmapped: UnmappedLog
    n_rows: int
    n_unmapped: int
    reasons: Counter = field(default_factory=Counter)
    duplicates: DuplicateStats = field(default_factory=DuplicateStats)
    missing_targets: list[str] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        return {
            "path": self.dataset.sources[0] if self.dataset.sources else "",
            "rows": self.n_rows,
            "samples": len(self.dataset),
            "unmapped_rows": self.n_unmapped,
            "reasons": dict(self.reasons),
            "duplicates": self.duplicates.to_dict(),
            "kinds": self.dataset.kind_counts(),
            "missing_targets": list(self.missing_targets),
        }


def map_screen(
    raw: RawScreen,
    mapper: GeneMapper,
    target_names: Sequence[str],
    duplicates: str = "keep_all",
) -> ScreenLoad:
    """Map a raw screen's identifiers to ``mapper.genes``.

    A sample with any unmapped gene is dropped: it cannot be represented as a deletion in this
    graph. Each unmapped identifier is logged with the number of samples it cost; each dropped
    sample is counted under the reason of its first unmapped gene (``all genes unmapped`` when none
    of its genes mapped). Duplicates follow ``duplicates`` (``keep_all``, ``mean``, ``first``, ``error``).
    """
    log = UnmappedLog(str(raw.path))
    reasons: Counter = Counter(raw.filtered)
    r = raw.num_rows
    sizes = np.diff(raw.ptr)
    row_of = np.repeat(np.arange(r), sizes)
    code = np.asarray(mapper.indices(raw.names), dtype=np.int64)
    flat = code[raw.genes] if raw.genes.size else np.zeros(0, dtype=np.int64)
    bad_entry = flat < 0
    bad_row = np.zeros(r, dtype=bool)
    bad_row[row_of[bad_entry]] = True
    n_bad_entries = np.bincount(row_of[bad_entry], minlength=r)
    if bad_row.any():
        ids, rows = raw.genes[bad_entry], row_of[bad_entry]
        pair = np.unique(np.stack([ids, rows], 1), axis=0)  # each (identifier, row) once
        uniq, first, counts = np.unique(pair[:, 0], return_index=True, return_counts=True)
        for u, f0, c in zip(uniq.tolist(), first.tolist(), counts.tolist()):
            name = raw.names[u]
            log.add(name, mapper.resolve(name)[1], int(raw.line[pair[f0, 1]]), int(c))
        for row in np.flatnonzero(bad_row).tolist():
            if n_bad_entries[row] == sizes[row]:
                reasons["all genes unmapped"] += 1
            else:
                first_bad = raw.genes[raw.ptr[row] : raw.ptr[row + 1]][flat[raw.ptr[row] : raw.ptr[row + 1]] < 0][0]
                reasons[mapper.resolve(raw.names[first_bad])[1]] += 1
    # a gene named twice under different spellings (alias and ORF) within one sample
    pad_rows = np.flatnonzero(~bad_row)
    keep = ~bad_row
    if pad_rows.size:
        k = int(sizes.max())
        pad = np.full((r, k), -1, dtype=np.int64)
        pos = np.arange(flat.size) - raw.ptr[row_of]
        pad[row_of, pos] = flat
        srt = np.sort(pad, axis=1)
        rep = ((srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)).any(axis=1) & keep
        if rep.any():
            reasons["gene repeated in sample"] += int(rep.sum())
            keep &= ~rep
    kept = np.flatnonzero(keep)
    ksizes = sizes[kept]
    ptr = np.zeros(kept.size + 1, dtype=np.int64)
    ptr[1:] = np.cumsum(ksizes)
    sel = np.repeat(raw.ptr[kept], ksizes) + (np.arange(int(ptr[-1])) - np.repeat(ptr[:-1], ksizes))
    y = np.full((kept.size, len(target_names)), np.nan, dtype=np.float32)
    missing = []
    for j, t in enumerate(target_names):
        if t in raw.targets:
            y[:, j] = raw.targets[t][kept]
        else:
            missing.append(t)
    ds = PerturbationDataset(
        pert_idx=torch.from_numpy(flat[sel]),
        ptr=torch.from_numpy(ptr),
        y=torch.from_numpy(y),
        target_names=list(target_names),
        num_genes=len(mapper.genes),
        weight=None if raw.weight is None else torch.from_numpy(raw.weight[kept].astype(np.float32)),
        line=torch.from_numpy(raw.line[kept].astype(np.int32)),
        split=torch.from_numpy(raw.split[kept]),
        sources=[str(raw.path)],
    )
    try:
        ds, dup = merge_duplicates(ds, duplicates)  # type: ignore[arg-type]
    except ValueError as exc:
        raise DataError(str(exc), raw.path) from None
    return ScreenLoad(ds, log, r, int(bad_row.sum()), reasons, dup, missing)


def load_screen(
    spec: ScreenEntryBase | dict[str, Any],
    mapper: GeneMapper,
    target_names: Sequence[str],
    root: str | Path = ".",
) -> ScreenLoad:
    """Read a screen (a validated ``data.screens`` entry, or a dict of its fields) onto a gene list.

    Reusable by ``cellgi evaluate``: build the :class:`GeneMapper` from the checkpoint's stored
    mapper (``GeneMapper.from_dict``), then::

        load = load_screen({"format": "kuzmin", "path": "screen.tsv"}, mapper, ["gene_interaction"])
        load.dataset, load.n_unmapped, load.reasons
    """
    if isinstance(spec, dict):
        try:
            spec = screen_entry(spec)
        except Exception as exc:  # noqa: BLE001 - pydantic ValidationError, shown in words
            raise DataError(f"invalid screen description: {exc}") from None
    raw = read_raw_screen(spec, root)
    return map_screen(raw, mapper, target_names, spec.duplicates)
