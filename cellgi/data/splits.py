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

Saved splits carry each sample's identity (:func:`sample_keys`: a hash of its sorted gene names, plus
the file and line it came from), so that a resumed run maps its splits onto data that was edited since
(rows added, moved or removed) by sample, never by row number (:func:`map_saved_splits`): a sample is
never used in a split other than the one it was put in. A data set other than
:class:`PerturbationDataset` takes part by having ``ptr`` and ``pert_idx`` (index sets, CSR) or a
method ``sample_keys(gene_names) -> uint64 array``; ``source``/``line``/``sources`` are optional.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import torch
from torch import Tensor

from cellgi.data.errors import DataError
from cellgi.fileio import atomic_open
from cellgi.data.grid import GridDataset
from cellgi.data.perturbations import SPLIT_NAMES, PerturbationDataset

__all__ = [
    "SplitMapping",
    "SplitResult",
    "load_splits",
    "make_splits",
    "map_saved_splits",
    "sample_keys",
    "save_splits",
    "shared_genes",
]


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
    label = _gene_labels(ds.num_genes, test_g, val_g)
    sample = np.repeat(np.arange(n), ds.set_sizes.numpy())
    n_test = np.bincount(sample, weights=(label[genes] == 2), minlength=n).astype(np.int64)
    n_val_s = np.bincount(sample, weights=(label[genes] == 1), minlength=n).astype(np.int64)
    split, mixed = _split_by_held_out(n_test, n_val_s)
    return split, mixed, test_g.tolist(), val_g.tolist()


def _gene_labels(num_genes: int, test_g: np.ndarray, val_g: np.ndarray) -> np.ndarray:
    """``[N]`` label of each gene: 0 training, 1 validation, 2 test."""
    label = np.zeros(num_genes, dtype=np.int8)
    label[val_g] = 1
    label[test_g] = 2
    return label


def _split_by_held_out(n_test: np.ndarray, n_val: np.ndarray) -> tuple[dict[str, np.ndarray], int]:
    """Samples by their count of test and validation genes: ``train`` (neither), ``val`` (validation genes
    only), ``test`` (test genes only) and its parts with one and with two or more test genes; a sample with
    both kinds is in no split (returned: how many)."""
    mixed = (n_test > 0) & (n_val > 0)
    split = {
        "train": np.flatnonzero((n_test == 0) & (n_val == 0)),
        "val": np.flatnonzero((n_val > 0) & (n_test == 0)),
        "test": np.flatnonzero((n_test > 0) & ~mixed),
        "test_one_unseen": np.flatnonzero((n_test == 1) & ~mixed),
        "test_two_unseen": np.flatnonzero((n_test >= 2) & ~mixed),
    }
    return split, int(mixed.sum())


def _grid_split(ds: GridDataset, kind: str, fractions: Sequence[float], rng: np.random.Generator, num_folds: int, fold: int,
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
    label = _gene_labels(ds.num_genes, test_g, val_g)
    lq, la = torch.from_numpy(label)[ds.query_genes], torch.from_numpy(label)[ds.array_genes]
    n_test = ds.cell_select((lq == 2).to(torch.int8).unsqueeze(1) + (la == 2).to(torch.int8).unsqueeze(0)).numpy()
    n_val = ds.cell_select((lq == 1).to(torch.int8).unsqueeze(1) + (la == 1).to(torch.int8).unsqueeze(0)).numpy()
    split, mixed = _split_by_held_out(n_test, n_val)
    return split, mixed, test_g.tolist(), val_g.tolist()


def make_splits(
    ds: PerturbationDataset | GridDataset,
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
    if isinstance(ds, GridDataset):  # gene masks over the grid's cells
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


def sample_keys(ds: PerturbationDataset | GridDataset, gene_names: Sequence[str]) -> np.ndarray:
    """One ``uint64`` per sample: a hash of the sample's sorted gene names (case-insensitive), the
    identity a saved split is kept by. ``ds`` provides ``sample_keys(gene_names)`` itself, or ``ptr`` and
    ``pert_idx`` (each sample's gene indices into ``gene_names``)."""
    own = getattr(ds, "sample_keys", None)
    if callable(own):
        return np.asarray(own(gene_names), dtype=np.uint64)
    # a 64-bit hash per gene name; a set's key mixes the sum of its genes' hashes (order-free, vectorised)
    # with its size: two different sets share a key with probability about 2**-64
    per_gene = np.array([int.from_bytes(hashlib.blake2b(str(g).upper().encode(), digest_size=8).digest(), "little")
                         for g in gene_names], dtype=np.uint64)
    if not hasattr(ds, "ptr") and callable(getattr(ds, "pairs", None)):
        # a grid of pairs (cellgi.data.grid.GridDataset): the pairs by index arithmetic, in chunks
        n = len(ds)
        out = np.empty(n, dtype=np.uint64)
        step = 1 << 22
        with np.errstate(over="ignore"):
            for lo in range(0, n, step):
                p = torch.as_tensor(ds.pairs(torch.arange(lo, min(n, lo + step)))).numpy().astype(np.int64)
                out[lo:lo + p.shape[0]] = per_gene[p[:, 0]] + per_gene[p[:, 1]]
            size_mix = np.uint64(2) * np.uint64(0x9E3779B97F4A7C15)  # wraps modulo 2**64, as meant
        return _mix64(out ^ size_mix)
    ptr = torch.as_tensor(ds.ptr).numpy().astype(np.int64)
    idx = torch.as_tensor(ds.pert_idx).numpy().astype(np.int64)
    if ptr.size <= 1:
        return np.zeros(0, dtype=np.uint64)
    sums = np.add.reduceat(per_gene[idx], ptr[:-1])
    sizes = np.diff(ptr).astype(np.uint64)
    return _mix64(sums ^ (sizes * np.uint64(0x9E3779B97F4A7C15)))


def _mix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser (wrapping uint64 arithmetic)."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _identity(ds: PerturbationDataset | GridDataset, gene_names: Sequence[str]) -> dict[str, np.ndarray]:
    """What :func:`save_splits` stores per sample so that a split survives an edited data file."""
    n = len(ds)
    source = getattr(ds, "source", None)
    line = getattr(ds, "line", None)
    sources = list(getattr(ds, "sources", None) or [])
    return {
        "_keys": sample_keys(ds, gene_names),
        "_source": np.zeros(n, np.int64) if source is None else torch.as_tensor(source).numpy().astype(np.int64),
        "_line": np.zeros(n, np.int64) if line is None else torch.as_tensor(line).numpy().astype(np.int64),
        "_sources": np.asarray(sources or [""], dtype=str),
    }


def save_splits(splits: dict[str, Tensor], path: str | Path, dataset: PerturbationDataset | GridDataset | None = None,
                gene_names: Sequence[str] | None = None) -> Path:
    """Write splits atomically: ``.npz`` (arrays) or ``.json`` (lists), chosen by the suffix.

    With ``dataset`` and ``gene_names`` each sample's identity is stored too (``_keys``, ``_source``,
    ``_line``, ``_sources``), which :func:`map_saved_splits` needs to map the splits onto edited data.
    """
    p = Path(path)
    if p.suffix not in (".json", ".npz"):
        raise ValueError(f"splits file must end in .npz or .json, got {p.name}")
    extra = _identity(dataset, gene_names) if dataset is not None and gene_names is not None else {}
    with atomic_open(p) as fh:
        if p.suffix == ".json":
            body = {k: v.tolist() for k, v in splits.items()}
            body.update({k: v.tolist() for k, v in extra.items()})
            fh.write(json.dumps(body).encode())
        else:
            np.savez(fh, **{k: v.numpy().astype(np.int64) for k, v in splits.items()},
                     **{k: (v.astype(np.uint64) if k == "_keys" else v) for k, v in extra.items()})
    return p


def _read(p: Path) -> dict[str, np.ndarray]:
    try:
        if p.suffix == ".json":
            data = json.loads(p.read_text())
            return {k: np.asarray(v, dtype=(np.uint64 if k == "_keys" else str if k == "_sources" else np.int64))
                    for k, v in data.items()}
        with np.load(p, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, TypeError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read splits: {exc}", p) from None


def load_splits(path: str | Path) -> dict[str, Tensor]:
    """Read splits written by :func:`save_splits` (sample indices of the data as it was then)."""
    raw = _read(Path(path))
    return {k: torch.from_numpy(v.astype(np.int64)) for k, v in raw.items() if not k.startswith("_")}


@dataclass
class SplitMapping:
    """Saved splits mapped onto the data of now (:func:`map_saved_splits`)."""

    splits: dict[str, Tensor]
    #: the data is the one the splits were made on, sample for sample, in the same order
    unchanged: bool
    #: samples of the data now that no saved split holds (rows added since), left out of every split
    new_samples: int = 0
    #: ``file: N rows added`` lines for the notes
    details: list[str] = field(default_factory=list)


def _rank_in_group(keys: np.ndarray) -> np.ndarray:
    """For each position, how many earlier positions hold the same key (0 for the first)."""
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    start = np.r_[0, np.flatnonzero(sk[1:] != sk[:-1]) + 1]
    first = np.repeat(start, np.diff(np.r_[start, sk.size]))
    rank = np.empty(keys.size, dtype=np.int64)
    rank[order] = np.arange(sk.size) - first
    return rank


def _where(sources: np.ndarray, source: np.ndarray, line: np.ndarray, i: int) -> str:
    name = str(sources[int(source[i])]) if 0 <= int(source[i]) < sources.size else "?"
    return f"{name}:{int(line[i])}" if int(line[i]) > 0 else name


def map_saved_splits(path: str | Path, dataset: PerturbationDataset | GridDataset, gene_names: Sequence[str]) -> SplitMapping:
    """The splits saved in ``path`` expressed as indices into ``dataset`` (the data as it is now).

    Samples are matched by identity (:func:`sample_keys`; the k-th sample with a gene set then is the
    k-th with it now), so rows added, moved or removed elsewhere in a file change nothing. Samples that
    are new are left out of every split (counted in :attr:`SplitMapping.new_samples`).

    Raises:
        DataError: a sample of a saved split is no longer in the data (naming the file and the line it
            was on), a gene set in several splits whose count changed (which one is which cannot be
            told), or a splits file without identities (written by an older cellgi) that does not
            match the data now.
    """
    p = Path(path)
    raw = _read(p)
    names = [k for k in raw if not k.startswith("_")]
    keys_now = sample_keys(dataset, gene_names)
    n_now = keys_now.size
    if "_keys" not in raw:  # an older file: only row numbers, usable only when nothing moved
        saved = {k: torch.from_numpy(raw[k].astype(np.int64)) for k in names}
        top = max((int(v.max()) for v in saved.values() if v.numel()), default=-1)
        if top >= n_now:
            raise DataError(
                f"the run's saved splits refer to sample {top + 1} but the data now has {n_now} samples: the "
                "data changed since the run started and this splits file does not say which sample is which "
                "(restore the data files, or start a new run)", p)
        return SplitMapping(saved, unchanged=True)
    keys_old = raw["_keys"].astype(np.uint64)
    if keys_old.size == n_now and np.array_equal(keys_old, keys_now):
        return SplitMapping({k: torch.from_numpy(raw[k].astype(np.int64)) for k in names}, unchanged=True)

    import pandas as pd  # imported here for startup time (~0.8 s): only remapping saved splits needs it

    code = np.full(keys_old.size, -1, dtype=np.int64)  # split of each old sample (-1: in none)
    for c, name in enumerate(SPLIT_NAMES):
        if name in raw:
            code[raw[name].astype(np.int64)] = c
    old = pd.DataFrame({"key": keys_old.view(np.int64), "rank": _rank_in_group(keys_old),
                        "old": np.arange(keys_old.size)})
    new = pd.DataFrame({"key": keys_now.view(np.int64), "rank": _rank_in_group(keys_now), "new": np.arange(n_now)})
    both = old.merge(new, on=["key", "rank"], how="outer")
    src_old, line_old, srcs_old = raw["_source"], raw["_line"], raw["_sources"]
    gone = both["new"].isna() & both["old"].notna()
    gone_idx = both.loc[gone, "old"].to_numpy(np.int64)
    gone_idx = gone_idx[code[gone_idx] >= 0]
    if gone_idx.size:
        gone_idx.sort()
        shown = ", ".join(f"{_where(srcs_old, src_old, line_old, i)} ({SPLIT_NAMES[code[i]]})" for i in gone_idx[:5])
        files = sorted({str(srcs_old[int(src_old[i])]) for i in gone_idx if 0 <= int(src_old[i]) < srcs_old.size})
        raise DataError(
            f"the data changed since the run started: {gone_idx.size} sample(s) of its splits are no longer "
            f"in {', '.join(files) or 'the data'} (as they were: {shown}{', ...' if gone_idx.size > 5 else ''}); "
            "a resumed run keeps the samples it was split on: restore the file, or start a new run", p)
    # a gene set held by several splits whose count changed: which measurement is which cannot be told
    per_key = pd.DataFrame({"key": keys_old.view(np.int64), "code": code}).groupby("key")["code"].nunique()
    n_old = pd.Series(keys_old.view(np.int64)).value_counts()
    n_new = pd.Series(keys_now.view(np.int64)).value_counts()
    mixed = per_key[per_key > 1].index
    changed = [k for k in mixed if n_new.get(k, 0) != n_old.get(k, 0)]
    if changed:
        i = int(np.flatnonzero(keys_old.view(np.int64) == changed[0])[0])
        raise DataError(
            f"the data changed since the run started: {len(changed)} gene set(s) measured in several splits "
            f"now occur a different number of times (e.g. the one at {_where(srcs_old, src_old, line_old, i)}), "
            "so which measurement belongs to which split cannot be told; restore the file, or start a new run", p)
    matched = both.dropna()
    old_to_new = np.full(keys_old.size, -1, dtype=np.int64)
    old_to_new[matched["old"].to_numpy(np.int64)] = matched["new"].to_numpy(np.int64)
    splits = {}
    for k in names:
        idx = old_to_new[raw[k].astype(np.int64)]
        splits[k] = torch.from_numpy(np.sort(idx[idx >= 0]))
    added = both.loc[both["old"].isna(), "new"].to_numpy(np.int64)
    details = []
    src_now = getattr(dataset, "source", None)
    srcs_now = list(getattr(dataset, "sources", None) or [])
    if added.size and src_now is not None and srcs_now:
        counts = np.bincount(torch.as_tensor(src_now).numpy()[added].astype(np.int64), minlength=len(srcs_now))
        details = [f"{srcs_now[j]}: {int(c)} sample(s) not in the run's data when it started"
                   for j, c in enumerate(counts) if c]
    return SplitMapping(splits, unchanged=False, new_samples=int(added.size), details=details)
