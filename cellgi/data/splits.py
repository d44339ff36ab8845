"""Train/val/test splits of a :class:`PerturbationDataset`, deterministic given a seed.

- ``random``: a seeded permutation cut by the fractions.
- ``gene_holdout``: genes are drawn in a seeded order and made test genes until the samples they
  touch reach the test fraction (a gene whose samples would overshoot it by more than 5 % is
  skipped, so hub genes do not swamp a split); any sample touching a test gene is test. Then the
  same for val on the rest. The remaining samples train: no train sample deletes a test or val gene.
- ``strict_gene_holdout``: genes are partitioned into train/val/test genes; a sample belongs to a
  split only when *all* its genes are in that split's genes; mixed samples are dropped (counted).
  Gene fractions are ``f ** (1 / k)`` normalised (k = mean set size), so kept samples follow the
  requested ratio.
- ``column``: the split column of a table screen (every sample must have one).
- ``gene_folds``: the gene-held-out protocol for real screens. Genes touched by more than
  ``shared_gene_fraction`` of the samples (a Kuzmin screen's query genes) are *shared*: never held out.
  The other genes are dealt into ``num_folds`` seeded folds; fold ``fold`` holds the test genes, and
  ``val_fraction`` of the remaining genes (seeded) are validation genes. A sample with a test gene is
  test, else one with a validation gene is validation, else train; a sample with both a test and a
  validation gene is dropped (counted). Train never deletes a held-out gene and validation is
  gene-disjoint from test and train (early stopping on it rewards generalisation, not memory). The
  test split is also cut by how many of its genes are unseen: ``test_one_unseen`` (exactly one) and
  ``test_two_unseen`` (two or more), both subsets of ``test``. On a Kuzmin screen (queries shared) the
  held-out genes are array genes; on a symmetric pair screen both kinds of test pairs occur. Folds
  ``0..K-1`` with one seed partition the held-out genes: every gene is a test gene exactly once.

Splits are ``{"train", "val", "test"} -> LongTensor`` of sample indices, sorted; ``gene_folds`` adds
``test_one_unseen`` and ``test_two_unseen`` (possibly empty).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import torch
from torch import Tensor

from cellgi.data.errors import DataError
from cellgi.fileio import atomic_open
from cellgi.data.perturbations import SPLIT_NAMES, PerturbationDataset

__all__ = ["SplitResult", "load_splits", "make_splits", "save_splits", "shared_genes"]


@dataclass
class SplitResult:
    """Splits plus what the splitter had to leave out."""

    splits: dict[str, Tensor]
    dropped: int = 0
    test_genes: list[int] = field(default_factory=list)
    val_genes: list[int] = field(default_factory=list)

    def sizes(self) -> dict[str, int]:
        return {k: int(v.numel()) for k, v in self.splits.items()}


def _counts(n: int, fractions: Sequence[float]) -> tuple[int, int, int]:
    n_val = int(round(fractions[1] * n))
    n_test = int(round(fractions[2] * n))
    return n - n_val - n_test, n_val, n_test


def _random(n: int, fractions: Sequence[float], rng: np.random.Generator) -> dict[str, np.ndarray]:
    perm = rng.permutation(n)
    n_tr, n_val, _ = _counts(n, fractions)
    return {"train": perm[:n_tr], "val": perm[n_tr : n_tr + n_val], "test": perm[n_tr + n_val :]}


def _incidence(ds: PerturbationDataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR gene -> samples: ``(order, gptr, sample_of_entry)``."""
    genes = ds.pert_idx.numpy().astype(np.int64)
    sample = np.repeat(np.arange(len(ds)), ds.set_sizes.numpy())
    order = np.argsort(genes, kind="stable")
    gptr = np.zeros(ds.num_genes + 1, dtype=np.int64)
    np.cumsum(np.bincount(genes, minlength=ds.num_genes), out=gptr[1:])
    return sample[order], gptr, genes


def _gene_holdout(ds: PerturbationDataset, fractions: Sequence[float], rng: np.random.Generator):
    n = len(ds)
    samples_of, gptr, _ = _incidence(ds)
    present = np.flatnonzero(np.diff(gptr) > 0)
    order = present[rng.permutation(present.size)]
    assign = np.full(n, -1, dtype=np.int64)  # 2 test, 1 val
    _, n_val, n_test = _counts(n, fractions)
    chosen: dict[int, list[int]] = {2: [], 1: []}
    for code, target in ((2, n_test), (1, n_val)):
        # Greedy in seeded order, skipping genes whose samples would overshoot the target by more
        # than 5 % (hub genes such as screen queries touch thousands of samples); if nothing fits,
        # the gene with the smallest overshoot is taken so that the split is not empty.
        got = 0
        best: tuple[int, int] | None = None  # (overshoot, gene)
        for g in order.tolist():
            if got >= target * 0.95 or target == 0:
                break
            touched = samples_of[gptr[g] : gptr[g + 1]]
            new = np.unique(touched[assign[touched] < 0])
            if new.size == 0:
                continue
            if got + new.size > target * 1.05 + 1:
                over = got + new.size - target
                if best is None or over < best[0]:
                    best = (over, g)
                continue
            assign[new] = code
            got += int(new.size)
            chosen[code].append(g)
        if got == 0 and target > 0 and best is not None:
            g = best[1]
            touched = samples_of[gptr[g] : gptr[g + 1]]
            assign[touched[assign[touched] < 0]] = code
            chosen[code].append(g)
    split = {
        "train": np.flatnonzero(assign < 0),
        "val": np.flatnonzero(assign == 1),
        "test": np.flatnonzero(assign == 2),
    }
    return split, chosen[2], chosen[1]


def _strict(ds: PerturbationDataset, fractions: Sequence[float], rng: np.random.Generator):
    k = float(ds.set_sizes.double().mean()) if len(ds) else 1.0
    f = np.asarray(fractions, dtype=np.float64) ** (1.0 / max(k, 1.0))
    f = f / f.sum()
    _, gptr, genes = _incidence(ds)
    present = np.flatnonzero(np.diff(gptr) > 0)
    perm = present[rng.permutation(present.size)]
    n_val = int(round(f[1] * present.size))
    n_test = int(round(f[2] * present.size))
    label = np.zeros(ds.num_genes, dtype=np.int64)  # 0 train, 1 val, 2 test
    label[perm[:n_test]] = 2
    label[perm[n_test : n_test + n_val]] = 1
    sizes = ds.set_sizes.numpy()
    sample = np.repeat(np.arange(len(ds)), sizes)
    lab = label[genes]
    lo = np.full(len(ds), 9, dtype=np.int64)
    hi = np.full(len(ds), -1, dtype=np.int64)
    np.minimum.at(lo, sample, lab)
    np.maximum.at(hi, sample, lab)
    pure = lo == hi
    split = {name: np.flatnonzero(pure & (lo == code)) for code, name in enumerate(SPLIT_NAMES)}
    return split, int((~pure).sum()), perm[:n_test].tolist(), perm[n_test : n_test + n_val].tolist()


def _shared(touched: np.ndarray, num_samples: int, fraction: float) -> np.ndarray:
    return np.flatnonzero((touched > 0) & (touched > fraction * num_samples))


def shared_genes(ds: PerturbationDataset, fraction: float = 0.05) -> np.ndarray:
    """Sorted indices of the genes deleted in more than ``fraction`` of the samples: a Kuzmin screen's
    query genes, which ``gene_folds`` shares between all splits (``shared_gene_fraction``)."""
    return _shared(np.diff(_incidence(ds)[1]), len(ds), fraction)


def _fold_genes(touched: np.ndarray, n: int, rng: np.random.Generator, num_folds: int, fold: int,
                val_fraction: float, shared_gene_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """``gene_folds``' test and validation genes (sorted) from the samples each gene touches."""
    present = np.flatnonzero(touched > 0)
    shared = _shared(touched, n, shared_gene_fraction)
    cand = np.setdiff1d(present, shared)
    if cand.size < num_folds:
        raise DataError(
            f"gene_folds: only {cand.size} genes can be held out (others touch more than "
            f"{shared_gene_fraction:g} of the samples), fewer than num_folds={num_folds}"
        )
    perm = cand[rng.permutation(cand.size)]
    folds = np.array_split(perm, num_folds)
    test_g = np.sort(folds[fold])
    rest = np.concatenate([f for i, f in enumerate(folds) if i != fold])
    # validation genes: a seeded draw from the other folds (same seed + other fold = other draw)
    vrng = np.random.default_rng([int(rng.integers(2**31)), fold])
    n_val = int(round(val_fraction * rest.size))
    val_g = np.sort(rest[vrng.permutation(rest.size)[:n_val]])
    return test_g, val_g


def _gene_folds(ds: PerturbationDataset, rng: np.random.Generator, num_folds: int, fold: int,
                val_fraction: float, shared_gene_fraction: float):
    n = len(ds)
    samples_of, gptr, genes = _incidence(ds)
    test_g, val_g = _fold_genes(np.diff(gptr), n, rng, num_folds, fold, val_fraction, shared_gene_fraction)
    label = np.zeros(ds.num_genes, dtype=np.int64)
    label[val_g] = 1
    label[test_g] = 2
    sample = np.repeat(np.arange(n), ds.set_sizes.numpy())
    n_test = np.bincount(sample, weights=(label[genes] == 2), minlength=n).astype(np.int64)
    n_val_s = np.bincount(sample, weights=(label[genes] == 1), minlength=n).astype(np.int64)
    mixed = (n_test > 0) & (n_val_s > 0)
    split = {
        "train": np.flatnonzero((n_test == 0) & (n_val_s == 0)),
        "val": np.flatnonzero((n_val_s > 0) & (n_test == 0)),
        "test": np.flatnonzero((n_test > 0) & ~mixed),
        "test_one_unseen": np.flatnonzero((n_test == 1) & ~mixed),
        "test_two_unseen": np.flatnonzero((n_test >= 2) & ~mixed),
    }
    return split, int(mixed.sum()), test_g.tolist(), val_g.tolist()


def _grid_split(ds, kind: str, fractions: Sequence[float], rng: np.random.Generator, num_folds: int, fold: int,
                val_fraction: float, shared_gene_fraction: float):
    """Splits of a :class:`~cellgi.data.grid.GridDataset` from gene labels over its ``[Q, A]`` cells: the same
    rules as for a flat data set, without materialising the pairs."""
    n = len(ds)
    if kind == "random":
        return _random(n, fractions, rng), 0, [], []
    q, a = ds.shape
    s = ds.num_shared
    row_len = (a - ds.col_start).numpy()
    col_len = np.minimum(np.arange(a), s) + (q - s)  # rows whose valid columns reach column a
    touched = np.zeros(ds.num_genes, dtype=np.int64)
    np.add.at(touched, ds.query_genes.numpy(), row_len)
    np.add.at(touched, ds.array_genes.numpy(), col_len)
    test_g, val_g = _fold_genes(touched, n, rng, num_folds, fold, val_fraction, shared_gene_fraction)
    label = np.zeros(ds.num_genes, dtype=np.int8)
    label[val_g] = 1
    label[test_g] = 2
    lq, la = torch.from_numpy(label)[ds.query_genes], torch.from_numpy(label)[ds.array_genes]
    n_test = ds.cell_select((lq == 2).to(torch.int8).unsqueeze(1) + (la == 2).to(torch.int8).unsqueeze(0)).numpy()
    n_val = ds.cell_select((lq == 1).to(torch.int8).unsqueeze(1) + (la == 1).to(torch.int8).unsqueeze(0)).numpy()
    mixed = (n_test > 0) & (n_val > 0)
    split = {
        "train": np.flatnonzero((n_test == 0) & (n_val == 0)),
        "val": np.flatnonzero((n_val > 0) & (n_test == 0)),
        "test": np.flatnonzero((n_test > 0) & ~mixed),
        "test_one_unseen": np.flatnonzero((n_test == 1) & ~mixed),
        "test_two_unseen": np.flatnonzero((n_test >= 2) & ~mixed),
    }
    return split, int(mixed.sum()), test_g.tolist(), val_g.tolist()


def make_splits(
    ds: PerturbationDataset,
    kind: Literal["random", "gene_holdout", "strict_gene_holdout", "column", "gene_folds"] = "random",
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    *,
    allow_empty: Sequence[str] = (),
    num_folds: int = 5,
    fold: int = 0,
    val_fraction: float = 0.1,
    shared_gene_fraction: float = 0.05,
) -> SplitResult:
    """Split ``ds``; see the module doc for the kinds.

    Raises:
        DataError: an empty split not listed in ``allow_empty`` (a fraction of 0 allows it), or
            ``column`` with samples lacking a split value.
    """
    rng = np.random.default_rng(seed)
    dropped = 0
    test_genes: list[int] = []
    val_genes: list[int] = []
    if getattr(ds, "keys", None) is not None and hasattr(ds, "cell_select"):  # a GridDataset: gene masks
        if kind not in ("random", "gene_folds"):
            raise DataError(f"split kind {kind!r} is not available for a grid screen (sga_grid); "
                            "use gene_folds (genes held out) or random")
        if kind == "gene_folds" and not 0 <= fold < num_folds:
            raise DataError(f"gene_folds: fold must be in 0..{num_folds - 1}, got {fold}")
        parts, dropped, test_genes, val_genes = _grid_split(ds, kind, fractions, rng, num_folds, fold,
                                                            val_fraction, shared_gene_fraction)
        if kind == "gene_folds":
            fractions = (1.0, float(val_fraction > 0), 1.0)
    elif kind == "random":
        parts = _random(len(ds), fractions, rng)
    elif kind == "gene_holdout":
        parts, test_genes, val_genes = _gene_holdout(ds, fractions, rng)
    elif kind == "strict_gene_holdout":
        parts, dropped, test_genes, val_genes = _strict(ds, fractions, rng)
    elif kind == "gene_folds":
        if not 0 <= fold < num_folds:
            raise DataError(f"gene_folds: fold must be in 0..{num_folds - 1}, got {fold}")
        parts, dropped, test_genes, val_genes = _gene_folds(ds, rng, num_folds, fold, val_fraction,
                                                            shared_gene_fraction)
        fractions = (1.0, float(val_fraction > 0), 1.0)
    elif kind == "column":
        code = ds.split.numpy()  # type: ignore[union-attr]
        if (code < 0).any():
            n_missing = int((code < 0).sum())
            raise DataError(
                f"split kind 'column' but {n_missing} sample(s) have no split value "
                "(give split_column for every screen)"
            )
        parts = {name: np.flatnonzero(code == c) for c, name in enumerate(SPLIT_NAMES)}
    else:
        raise DataError(f"unknown split kind {kind!r}")
    splits = {name: torch.from_numpy(np.sort(parts[name]).astype(np.int64)) for name in parts}
    allowed = set(allow_empty) | {name for name, f in zip(SPLIT_NAMES, fractions) if f == 0}
    for name in SPLIT_NAMES:
        if splits[name].numel() == 0 and name not in allowed:
            extra = f"; {dropped} mixed samples were dropped" if dropped else ""
            raise DataError(
                f"split {name!r} is empty ({kind} split of {len(ds)} samples with fractions "
                f"{list(fractions)}{extra}); use more samples, other fractions or another split kind"
            )
    return SplitResult(splits, dropped, test_genes, val_genes)


def save_splits(splits: dict[str, Tensor], path: str | Path) -> Path:
    """Write splits atomically: ``.npz`` (arrays) or ``.json`` (lists), chosen by the suffix."""
    p = Path(path)
    if p.suffix not in (".json", ".npz"):
        raise ValueError(f"splits file must end in .npz or .json, got {p.name}")
    with atomic_open(p) as fh:
        if p.suffix == ".json":
            fh.write(json.dumps({k: v.tolist() for k, v in splits.items()}).encode())
        else:
            np.savez(fh, **{k: v.numpy().astype(np.int64) for k, v in splits.items()})
    return p


def load_splits(path: str | Path) -> dict[str, Tensor]:
    """Read splits written by :func:`save_splits`."""
    p = Path(path)
    try:
        if p.suffix == ".json":
            data = json.loads(p.read_text())
            return {k: torch.tensor(v, dtype=torch.long) for k, v in data.items()}
        with np.load(p, allow_pickle=False) as z:
            return {k: torch.from_numpy(z[k].astype(np.int64)) for k in z.files}
    except (OSError, ValueError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read splits: {exc}", p) from None
