"""How a stack's blend weights are chosen from the validation rows (``training.stack.blend``).

A stack blends the network with baselines, ``b + sum_k w_k x_k`` with ``w >= 0``, fitted on the
validation split (:mod:`cellgi.experiments.stacking`). On a gene-held-out split the validation rows are
the pairs of a few dozen genes, so least squares on them (rule ``nnls``) follows those genes' quirks:
the fitted weights swing from fold to fold (docs/benchmarks.md). The other rules only use the same rows,
but judge a blend by how it does on validation genes it was not fitted on:

- ``nnls``: non-negative least squares on all validation rows (the rule before ``blend`` existed).
- ``average``: the members' plain mean, with one fitted non-negative scale and an intercept.
- ``shrink``: ``lam * nnls + (1 - lam) * average``, where the average is that of the members nnls on every
  validation row gives a weight (a member least squares drops is not averaged back in), ``lam`` in
  ``0, 0.1, ..., 1`` chosen by cross-fitting over the validation genes: the validation genes are dealt into ``folds`` groups, the nnls
  and average fits are refitted without a group's rows and scored (squared error) on them; the ``lam``
  with the smallest pooled out-of-fold error wins, then both fits are redone on every row. A ratio between
  the members that is noise pulls ``lam`` toward 0 (the average).
- ``select``: the out-of-fold errors of each member alone (scaled), the average and the nnls blend; the
  best single member is kept unless another candidate has the lower error in at least ``confidence`` of
  ``bootstraps`` resamples of the validation genes (a cluster bootstrap: a row counts as often as its
  held-out genes were drawn, on average); the winner is then refitted on every row.

Rows are grouped by their *held-out* genes (:func:`heldout_genes`: the genes of a validation row that no
training row has); a row whose held-out genes fall in two groups is scored in neither and only fitted
on where neither group is left out. A split without held-out genes (random pairs) groups rows one by one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy.optimize import nnls
from torch import Tensor

from cellgi.data.batch import dataset_sets
from cellgi.predictors.stack import StackError

__all__ = ["BLEND_RULES", "BlendFit", "BlendRule", "fit_blend", "heldout_genes", "nnls_fit"]

BlendRule = Literal["nnls", "average", "shrink", "select"]
BLEND_RULES: tuple[str, ...] = ("nnls", "average", "shrink", "select")
_LAMBDAS = np.linspace(0.0, 1.0, 11)


@dataclass
class BlendFit:
    """Weights ``[K]`` and intercept of one target's blend, and how the rule got there (``info`` goes into
    ``stack.json``)."""

    weights: np.ndarray
    intercept: float
    info: dict[str, object] = field(default_factory=dict)


def nnls_fit(x: np.ndarray, t: np.ndarray, w: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Non-negative least squares of ``t [n]`` on ``x [n, K]`` with a free intercept (row weights ``w``):
    ``(weights [K], intercept)``. When nothing correlates positively, the first column alone."""

    w = np.ones(t.size) if w is None else w
    sw = w.sum()
    xm, tm = (w @ x) / sw, float(w @ t) / sw
    r = np.sqrt(w)[:, None]
    coef, _ = nnls((x - xm) * r, (t - tm) * r[:, 0])
    if not np.any(coef > 0):
        coef = np.zeros(x.shape[1])
        coef[0] = 1.0
    return coef, float(tm - xm @ coef)


def _scaled(x: np.ndarray, t: np.ndarray, direction: np.ndarray,
            w: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """``direction`` (fixed weights) times one non-negative least-squares scale, plus an intercept."""
    s, _ = nnls_fit((x @ direction)[:, None], t, w)
    if s[0] <= 0:  # nnls_fit's fallback for a non-positive scale is 1: keep the direction unscaled
        s[0] = 1.0
    coef = direction * s[0]
    w = np.ones(t.size) if w is None else w
    return coef, float((w @ t) / w.sum() - ((w @ x) / w.sum()) @ coef)


def _candidates(x: np.ndarray, t: np.ndarray, rule: str, kept: np.ndarray | None = None
                ) -> dict[str, tuple[np.ndarray, float]]:
    """The fits a rule weighs against each other, each refitted on ``x, t``; ``kept [K]`` bool: the members
    the average is taken over (default all)."""
    k = x.shape[1]
    kept = np.ones(k, dtype=bool) if kept is None else kept
    out = {"nnls": nnls_fit(x, t), "average": _scaled(x, t, kept / kept.sum())}
    if rule == "select":
        for j in range(k):
            out[f"member{j}"] = _scaled(x, t, np.eye(k)[j])
    return out


def _fold_of_rows(groups: np.ndarray, folds: int, rng: np.random.Generator) -> np.ndarray:
    """Each row's group fold (``-1``: its held-out genes fall in two folds), genes dealt at random."""
    genes = np.unique(groups[groups >= 0])
    if genes.size == 0:  # nothing held out: rows one by one
        return rng.permutation(groups.shape[0]) % folds
    fold_of = np.full(int(genes.max()) + 1, -1)
    fold_of[genes] = rng.permutation(genes.size) % folds
    f = np.where(groups >= 0, fold_of[np.maximum(groups, 0)], -1)
    first = f.max(1)
    same = np.all((f == first[:, None]) | (groups < 0), 1)
    return np.where(same, first, -1)


def _row_genes_or_rows(groups: np.ndarray) -> np.ndarray:
    """``groups`` with rows lacking any held-out gene given a group of their own (beyond every gene)."""
    g = groups.copy()
    none = ~(g >= 0).any(1)
    if none.any():
        base = int(g.max()) + 1 if (g >= 0).any() else 0
        g[none, 0] = base + np.arange(int(none.sum()))
    return g


def _out_of_fold(x: np.ndarray, t: np.ndarray, row_fold: np.ndarray, folds: int, rule: str,
                 lam: np.ndarray, kept: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Out-of-fold predictions of every candidate (and of ``shrink`` at each ``lam``); rows scored in no
    fold stay NaN."""
    n = t.size
    names = ["nnls", "average"] + ([f"member{j}" for j in range(x.shape[1])] if rule == "select" else [])
    oof = {nm: np.full(n, np.nan) for nm in names}
    oof_lam = np.full((lam.size, n), np.nan)
    for f in range(folds):
        test = row_fold == f
        # rows scored in another fold or in none (-1) may be fitted on when they have no gene of fold f
        train = row_fold != f
        if not test.any() or train.sum() < 3:
            continue
        fits = _candidates(x[train], t[train], rule, kept)
        for nm, (w, b) in fits.items():
            oof[nm][test] = x[test] @ w + b
        (wn, bn), (wa, ba) = fits["nnls"], fits["average"]
        for i, l in enumerate(lam):
            oof_lam[i, test] = x[test] @ (l * wn + (1 - l) * wa) + l * bn + (1 - l) * ba
    oof["_lam"] = oof_lam
    return oof


def fit_blend(columns: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None, *,
              rule: str = "nnls", folds: int = 5, bootstraps: int = 200, confidence: float = 0.9,
              seed: int = 0) -> BlendFit:
    """One target's blend of ``columns [n, K]`` (the network first) for ``y [n]`` on validation rows, by
    ``rule`` (the module doc). ``groups [n, m]``: each row's held-out genes (``-1`` padding;
    :func:`heldout_genes`); None: rows are their own groups. Rows where ``y`` or a column is not finite
    are left out.

    Raises:
        StackError: fewer than 2 usable rows, or an unknown rule.
    """
    if rule not in BLEND_RULES:
        raise StackError(f"unknown blend rule {rule!r}; known: {', '.join(BLEND_RULES)}")
    ok = np.isfinite(y) & np.isfinite(columns).all(1)
    x, t = columns[ok].astype(np.float64), y[ok].astype(np.float64)
    if t.size < 2:
        raise StackError(f"the stack's weights need validation rows: {t.size} usable")
    g = np.full((ok.size, 1), -1, dtype=np.int64) if groups is None else np.asarray(groups, dtype=np.int64)
    g = g.reshape(ok.size, -1)[ok]
    k = x.shape[1]
    if rule == "nnls":
        w, b = nnls_fit(x, t)
        return BlendFit(w, b, {"rule": "nnls"})
    if rule == "average":
        w, b = _scaled(x, t, np.full(k, 1.0 / k))
        return BlendFit(w, b, {"rule": "average"})
    rng = np.random.default_rng(seed)
    row_fold = _fold_of_rows(g, folds, rng)
    # shrink: toward the mean of the members nnls on every row keeps (one it drops is not averaged back in)
    kept = nnls_fit(x, t)[0] > 0 if rule == "shrink" else None
    oof = _out_of_fold(x, t, row_fold, folds, rule, _LAMBDAS, kept)
    scored = np.isfinite(oof["_lam"]).all(0)
    if scored.sum() < 2:  # too few rows or genes to score anything out of fold: the nnls fit
        w, b = nnls_fit(x, t)
        return BlendFit(w, b, {"rule": rule, "fallback": "nnls (too few rows to cross-fit)"})
    fits = _candidates(x, t, rule, kept)
    n_groups = int(np.unique(g[g >= 0]).size)
    if rule == "shrink":
        err = ((oof["_lam"][:, scored] - t[scored]) ** 2).mean(1)
        lam = float(_LAMBDAS[int(np.argmin(err))])
        (wn, bn), (wa, ba) = fits["nnls"], fits["average"]
        return BlendFit(lam * wn + (1 - lam) * wa, lam * bn + (1 - lam) * ba,
                        {"rule": "shrink", "lambda": lam, "average_over": np.flatnonzero(kept).tolist(),
                         "folds": folds, "scored_rows": int(scored.sum()), "heldout_genes": n_groups, "oof_mse": {f"{l:.1f}": float(e) for l, e in zip(_LAMBDAS, err)}})
    # select: the best member alone unless another candidate wins in `confidence` of the bootstraps
    names = [nm for nm in fits]
    sq = np.stack([(oof[nm][scored] - t[scored]) ** 2 for nm in names])  # [C, rows]
    members = [nm for nm in names if nm.startswith("member")]
    base = min(members, key=lambda nm: sq[names.index(nm)].mean())
    rows_g = _row_genes_or_rows(g[scored])
    uniq, inv = np.unique(rows_g[rows_g >= 0], return_inverse=True)
    gene_idx = np.full(rows_g.shape, -1)
    gene_idx[rows_g >= 0] = inv
    has = gene_idx >= 0
    wins = {nm: 0 for nm in names}
    for _ in range(bootstraps):
        draws = np.bincount(rng.integers(0, uniq.size, uniq.size), minlength=uniq.size).astype(np.float64)
        rw = np.where(has, draws[np.maximum(gene_idx, 0)], 0.0).sum(1) / has.sum(1)
        if rw.sum() <= 0:
            continue
        loss = sq @ rw / rw.sum()
        wins[names[int(np.argmin(loss))]] += 1
    share = {nm: wins[nm] / bootstraps for nm in names}
    rivals = [nm for nm in names if nm != base and share[nm] >= confidence]
    chosen = max(rivals, key=lambda nm: share[nm]) if rivals else base
    w, b = fits[chosen]
    return BlendFit(w, b, {"rule": "select", "chosen": chosen, "best_member": base, "bootstrap_wins": share,
                           "oof_mse": {nm: float(sq[i].mean()) for i, nm in enumerate(names)},
                           "folds": folds, "scored_rows": int(scored.sum()), "heldout_genes": n_groups})


def heldout_genes(dataset: object, rows: Tensor, train_rows: Tensor, chunk: int = 1_000_000) -> np.ndarray:
    """Each of ``rows``' genes that no ``train_rows`` sample has, as ``[len(rows), m]`` gene indices padded
    with ``-1`` (all ``-1`` for a row whose genes all train, as on a random split)."""

    seen = np.zeros(int(getattr(dataset, "num_genes")), dtype=bool)
    genes_in = getattr(dataset, "genes_in", None)
    if genes_in is not None:  # a grid: the distinct genes from its cells, no pair materialised
        seen[genes_in(train_rows).numpy()] = True
    else:
        for lo in range(0, train_rows.numel(), chunk):
            p, m = dataset_sets(dataset, train_rows[lo : lo + chunk])
            seen[p[m].numpy()] = True
    p, m = dataset_sets(dataset, rows)
    p, m = p.numpy(), m.numpy()
    keep = m & ~seen[p]
    return np.where(keep, p, -1).astype(np.int64)
