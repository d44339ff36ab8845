"""Perturbation samples stored flat: index sets of deleted genes, targets, weights, kinds.

A :class:`PerturbationDataset` of ``S`` samples keeps

- ``pert_idx`` ``[P]`` int32: deleted-gene indices of all samples, one after another;
- ``ptr`` ``[S+1]`` int64: sample ``s`` deleted ``pert_idx[ptr[s]:ptr[s+1]]``;
- ``y`` ``[S, T]`` float32 raw targets (NaN = not measured);
- ``weight`` ``[S]`` float32, ``kind`` ``[S]`` int8 (0 digenic, 1 trigenic, 2 other);
- ``source`` ``[S]`` int16 (index into ``sources``), ``line`` ``[S]`` int32 (input line) and
  ``split`` ``[S]`` int8 (-1 unset, 0 train, 1 val, 2 test; only from a split column).

Nothing per sample is a Python object, so 100,000 samples take a few MB. Batches are cut with
:meth:`PerturbationDataset.batch` from a list of sample indices in one vectorised step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Sequence

import numpy as np
import torch
from torch import Tensor

from cellgi.data.batch import PerturbationBatch, collate_flat, segment_ids

__all__ = [
    "KINDS",
    "SPLIT_NAMES",
    "DuplicateStats",
    "PerturbationDataset",
    "SampleCounts",
    "concat_datasets",
    "merge_duplicates",
]

KINDS = ("digenic", "trigenic", "other")
SPLIT_NAMES = ("train", "val", "test")
DuplicatePolicy = Literal["keep_all", "mean", "first", "error"]


def _kind_of_sizes(sizes: np.ndarray) -> np.ndarray:
    kind = np.full(sizes.shape, 2, dtype=np.int8)
    kind[sizes == 2] = 0
    kind[sizes == 3] = 1
    return kind


class SampleCounts:
    """Sizes that a data set of samples answers from its length and its target columns (the base of
    :class:`PerturbationDataset` and :class:`~cellgi.data.grid.GridDataset`)."""

    target_names: list[str]

    @property
    def num_samples(self) -> int:
        """Number of samples (``len``)."""
        return len(self)  # type: ignore[arg-type]

    @property
    def num_targets(self) -> int:
        """Number of target columns."""
        return len(self.target_names)


@dataclass(eq=False)
class PerturbationDataset(SampleCounts, torch.utils.data.Dataset):
    """Index sets of deleted genes (1..k per sample) with targets, stored flat (see module doc).

    Indexing with an int gives ``(genes [k] long, y [T], weight)``; with a list/tensor of indices it
    gives a :class:`~cellgi.data.batch.PerturbationBatch` (what a batch sampler feeds a DataLoader).
    """

    pert_idx: Tensor
    ptr: Tensor
    y: Tensor
    target_names: list[str]
    num_genes: int
    weight: Tensor | None = None
    kind: Tensor | None = None
    source: Tensor | None = None
    line: Tensor | None = None
    split: Tensor | None = None
    sources: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.pert_idx = torch.as_tensor(self.pert_idx).to(torch.int32)
        self.ptr = torch.as_tensor(self.ptr).to(torch.int64)
        s = self.ptr.numel() - 1
        if s < 0 or int(self.ptr[0]) != 0 or int(self.ptr[-1]) != self.pert_idx.numel():
            raise ValueError("ptr must start at 0 and end at len(pert_idx)")
        sizes = self.ptr[1:] - self.ptr[:-1]
        if s and int(sizes.min()) < 1:
            raise ValueError("every sample needs at least one deleted gene")
        if self.pert_idx.numel() and (int(self.pert_idx.min()) < 0 or int(self.pert_idx.max()) >= self.num_genes):
            raise ValueError(f"gene indices out of range [0, {self.num_genes})")
        self.y = torch.as_tensor(self.y, dtype=torch.float32)
        if self.y.dim() == 1:
            self.y = self.y.unsqueeze(1)
        if self.y.shape != (s, len(self.target_names)):
            raise ValueError(f"y must be [{s}, {len(self.target_names)}], got {tuple(self.y.shape)}")
        self.weight = torch.ones(s) if self.weight is None else torch.as_tensor(self.weight, dtype=torch.float32)
        if self.kind is None:
            self.kind = torch.from_numpy(_kind_of_sizes(sizes.numpy()))
        self.kind = torch.as_tensor(self.kind).to(torch.int8)
        self.source = torch.zeros(s, dtype=torch.int16) if self.source is None else torch.as_tensor(self.source).to(torch.int16)
        self.line = torch.zeros(s, dtype=torch.int32) if self.line is None else torch.as_tensor(self.line).to(torch.int32)
        self.split = torch.full((s,), -1, dtype=torch.int8) if self.split is None else torch.as_tensor(self.split).to(torch.int8)
        for name in ("weight", "kind", "source", "line", "split"):
            if getattr(self, name).shape != (s,):
                raise ValueError(f"{name} must be [{s}]")

    # -- sizes --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.ptr.numel() - 1)

    @property
    def set_sizes(self) -> Tensor:
        """``[S]`` number of deleted genes per sample."""
        return self.ptr[1:] - self.ptr[:-1]

    def nbytes(self) -> int:
        """Bytes held by the tensors (the whole storage of the data set)."""
        ts = (self.pert_idx, self.ptr, self.y, self.weight, self.kind, self.source, self.line, self.split)
        return int(sum(t.numel() * t.element_size() for t in ts))  # type: ignore[union-attr]

    def kind_counts(self) -> dict[str, int]:
        """Samples per kind (``digenic``, ``trigenic``, ``other``)."""
        counts = torch.bincount(self.kind.to(torch.long), minlength=len(KINDS))  # type: ignore[union-attr]
        return {k: int(c) for k, c in zip(KINDS, counts.tolist())}

    # -- access -------------------------------------------------------------------------------
    def genes_of(self, i: int) -> Tensor:
        """Deleted-gene indices of sample ``i`` (long)."""
        return self.pert_idx[int(self.ptr[i]) : int(self.ptr[i + 1])].to(torch.long)

    def padded(self, fill: int = -1) -> Tensor:
        """``[S, K]`` gene indices padded with ``fill`` (K = largest set)."""
        sizes = self.set_sizes
        k = int(sizes.max()) if len(self) else 0
        out = torch.full((len(self), k), fill, dtype=torch.long)
        if len(self):
            row = segment_ids(self.ptr)
            pos = torch.arange(self.pert_idx.numel()) - self.ptr[row]
            out[row, pos] = self.pert_idx.to(torch.long)
        return out

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, (int, np.integer)):
            i = int(index)
            if i < 0:
                i += len(self)
            return self.genes_of(i), self.y[i], self.weight[i]  # type: ignore[index]
        return self.batch(index)

    def batch(
        self,
        indices: Sequence[int] | Tensor,
        *,
        y_transform: Callable[[Tensor], Tensor] | None = None,
    ) -> PerturbationBatch:
        """A :class:`PerturbationBatch` of the given samples, built without per-sample Python work.

        Args:
            indices: sample indices.
            y_transform: optional callable on the ``[B, T]`` targets (e.g. a normaliser's ``transform``).
        """
        idx = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        if idx.numel() == 0:
            raise ValueError("cannot build an empty batch")
        start, end = self.ptr[idx], self.ptr[idx + 1]
        sizes = end - start
        offs = torch.zeros(idx.numel() + 1, dtype=torch.long)
        offs[1:] = torch.cumsum(sizes, 0)
        total = int(offs[-1])
        row = segment_ids(offs, total)
        flat = start[row] + (torch.arange(total) - offs[row])
        y = self.y[idx]
        if y_transform is not None:
            y = y_transform(y)
        return collate_flat(self.pert_idx[flat].to(torch.long), offs, y, self.weight[idx], idx)  # type: ignore[index]

    def subset(self, indices: Sequence[int] | Tensor) -> "PerturbationDataset":
        """A new data set of the given samples (in that order)."""
        idx = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        sizes = self.set_sizes[idx]
        offs = torch.zeros(idx.numel() + 1, dtype=torch.long)
        offs[1:] = torch.cumsum(sizes, 0)
        total = int(offs[-1])
        row = segment_ids(offs, total)
        flat = self.ptr[idx][row] + (torch.arange(total) - offs[row])
        return PerturbationDataset(
            pert_idx=self.pert_idx[flat],
            ptr=offs,
            y=self.y[idx],
            target_names=list(self.target_names),
            num_genes=self.num_genes,
            weight=self.weight[idx],  # type: ignore[index]
            kind=self.kind[idx],  # type: ignore[index]
            source=self.source[idx],  # type: ignore[index]
            line=self.line[idx],  # type: ignore[index]
            split=self.split[idx],  # type: ignore[index]
            sources=list(self.sources),
        )

    # -- serialisation ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Tensors, strings and ints only (safe for ``torch.load(weights_only=True)``)."""
        return {
            "pert_idx": self.pert_idx,
            "ptr": self.ptr,
            "y": self.y,
            "target_names": list(self.target_names),
            "num_genes": int(self.num_genes),
            "weight": self.weight,
            "kind": self.kind,
            "source": self.source,
            "line": self.line,
            "split": self.split,
            "sources": list(self.sources),
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> "PerturbationDataset":
        """Inverse of :meth:`state_dict`."""
        return cls(**state)

    @classmethod
    def from_sets(
        cls,
        sets: Sequence[Sequence[int]],
        y: Any,
        target_names: Sequence[str],
        num_genes: int,
        **kwargs: Any,
    ) -> "PerturbationDataset":
        """Build from a list of gene-index lists (convenient for small data and tests)."""
        sizes = torch.tensor([len(s) for s in sets], dtype=torch.long)
        ptr = torch.zeros(len(sets) + 1, dtype=torch.long)
        ptr[1:] = torch.cumsum(sizes, 0)
        flat = torch.tensor([g for s in sets for g in s], dtype=torch.int32)
        return cls(flat, ptr, torch.as_tensor(y, dtype=torch.float32), list(target_names), num_genes, **kwargs)

    def __repr__(self) -> str:
        kinds = ", ".join(f"{k}={v}" for k, v in self.kind_counts().items() if v)
        return f"PerturbationDataset(samples={len(self)}, targets={self.target_names}, {kinds})"


def concat_datasets(parts: Sequence[PerturbationDataset]) -> PerturbationDataset:
    """Concatenate data sets over the same genes and targets; ``source`` indices are re-based."""
    if not parts:
        raise ValueError("nothing to concatenate")
    first = parts[0]
    for p in parts[1:]:
        if p.num_genes != first.num_genes or p.target_names != first.target_names:
            raise ValueError("data sets differ in genes or targets")
    ptrs, base, srcs, sources = [], 0, [], []
    for p in parts:
        ptrs.append(p.ptr[1:] + base)
        base += p.pert_idx.numel()
        srcs.append(p.source.to(torch.int32) + len(sources))  # type: ignore[union-attr]
        sources.extend(p.sources or [""])
    return PerturbationDataset(
        pert_idx=torch.cat([p.pert_idx for p in parts]),
        ptr=torch.cat([torch.zeros(1, dtype=torch.long)] + ptrs),
        y=torch.cat([p.y for p in parts]),
        target_names=list(first.target_names),
        num_genes=first.num_genes,
        weight=torch.cat([p.weight for p in parts]),  # type: ignore[misc]
        kind=torch.cat([p.kind for p in parts]),  # type: ignore[misc]
        source=torch.cat(srcs),
        line=torch.cat([p.line for p in parts]),  # type: ignore[misc]
        split=torch.cat([p.split for p in parts]),  # type: ignore[misc]
        sources=sources,
    )


@dataclass
class DuplicateStats:
    """Repeated measurements of the same gene set."""

    groups: int = 0  # gene sets measured more than once
    rows: int = 0  # rows beyond the first of each such set
    policy: str = "keep_all"
    first_lines: list[tuple[int, int]] = field(default_factory=list)  # (line, first line) examples

    def to_dict(self) -> dict[str, Any]:
        return {"groups": self.groups, "extra_rows": self.rows, "policy": self.policy}


def _set_keys(ds: PerturbationDataset) -> np.ndarray:
    """``[S]`` group id of each sample's (unordered) gene set."""
    pad = ds.padded(fill=-1).numpy()
    pad.sort(axis=1)
    if pad.shape[1] == 0:
        return np.zeros(len(ds), dtype=np.int64)
    _, inverse = np.unique(pad, axis=0, return_inverse=True)
    return inverse.reshape(-1)


def merge_duplicates(ds: PerturbationDataset, policy: DuplicatePolicy) -> tuple[PerturbationDataset, DuplicateStats]:
    """Apply a duplicate policy to samples with the same gene set (order within a set ignored).

    - ``keep_all``: keep every row (counted).
    - ``first``: keep the first row of each set.
    - ``mean``: one row per set; targets averaged over the rows that measured them (NaN ignored),
      weights averaged; line and source of the first row.
    - ``error``: raise :class:`ValueError` naming the line of the first repeat.
    """
    stats = DuplicateStats(policy=policy)
    if len(ds) == 0:
        return ds, stats
    key = _set_keys(ds)
    uniq, first, inverse, counts = np.unique(key, return_index=True, return_inverse=True, return_counts=True)
    stats.groups = int((counts > 1).sum())
    stats.rows = int(len(ds) - uniq.size)
    if stats.rows == 0 or policy == "keep_all":
        return ds, stats
    if policy == "error":
        is_first = np.zeros(len(ds), dtype=bool)
        is_first[first] = True
        rep = int(np.flatnonzero(~is_first)[0])
        orig = int(first[inverse[rep]])
        lines = ds.line.numpy()  # type: ignore[union-attr]
        raise ValueError(
            f"{stats.rows} repeated measurement(s) of the same gene set; line {int(lines[rep])} repeats "
            f"line {int(lines[orig])} (duplicates policy is 'error')"
        )
    order = np.sort(first)  # keep the original order of first occurrences
    if policy == "first":
        return ds.subset(torch.from_numpy(order)), stats
    # mean
    y = ds.y.numpy().astype(np.float64)
    measured = ~np.isnan(y)
    g = uniq.size
    sums = np.zeros((g, y.shape[1]))
    cnts = np.zeros((g, y.shape[1]))
    np.add.at(sums, inverse, np.where(measured, y, 0.0))
    np.add.at(cnts, inverse, measured.astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        ymean = np.where(cnts > 0, sums / np.maximum(cnts, 1), np.nan)
    wmean = np.bincount(inverse, weights=ds.weight.numpy().astype(np.float64), minlength=g) / counts  # type: ignore[union-attr]
    base = ds.subset(torch.from_numpy(order))
    group_of_kept = inverse[order]
    base.y = torch.from_numpy(ymean[group_of_kept].astype(np.float32))
    base.weight = torch.from_numpy(wmean[group_of_kept].astype(np.float32))
    return base, stats
