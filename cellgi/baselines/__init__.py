"""The ``baseline`` role and its built-in members, fitted on a run's training split and reported beside the
model's metrics (``training.baselines``; a plugin adds one with ``@register("baseline", NAME)``, see
:class:`Baseline`).

- ``baseline_additive``: a per-gene additive model, ridge regression on one-hot gene indicators (below).
- ``baseline_features``: gradient-boosted trees (scikit-learn ``HistGradientBoostingRegressor``) on
  hand-made, order-invariant features of each gene set (:func:`set_features`): the per-gene inputs of
  ``data.features`` (single-mutant phenotypes, fitness, ...) and log1p degrees per graph, aggregated over
  the set by mean/min/max; for every graph the mean and max over the set's pairs of adjacency, edge
  weight, log1p shared neighbours and Jaccard index; shared GO-slim terms (when ``data.features`` has a
  ``go_slim`` source); the set size. Unlike the additive model it can score genes never seen in training.
  Early stopping uses the validation split (gene-disjoint under gene-held-out splits).

:func:`run_baselines` fits the spec's baselines and returns ``{name: {split: metrics}}``.

The additive model:

A sample deleting genes ``S`` is predicted as ``b + sum_{g in S} beta_g``. The coefficients minimise

.. math::

    \\sum_s w_s \\bigl(y_s - b - \\sum_{g \\in S_s} \\beta_g\\bigr)^2 + \\alpha \\lVert \\beta \\rVert^2

(intercept ``b`` not penalised) on the training split, one fit per target on the rows that measured it.
The closed form is solved exactly in float64 on the genes seen in training (others get ``beta = 0``):
with ``G = X^T W X`` (gene co-occurrence, accumulated from the index sets without building ``X``),
``x_bar = X^T W 1 / sum(w)`` and ``y_bar = sum(w y) / sum(w)``,

.. math::

    (G - \\textstyle\\sum w \\; x_\\bar x_\\bar^T + \\alpha I)\\, \\beta = X^T W y - y_\\bar X^T W 1,
    \\qquad b = y_\\bar - x_\\bar^T \\beta .

A model that cannot beat this has learnt nothing beyond per-gene effects; every run reports it beside
the model's metrics (``baseline_additive.<split>.<metric>``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from pydantic import Field

from cellgi.data.perturbations import PerturbationDataset
from cellgi.registry import Params, register

#: a grid's tree baseline stops early on a fixed uniform sample of this many validation pairs
GRID_EARLY_STOP_PAIRS = 50_000
#: pairs per chunk when a baseline predicts over a grid's held-out pairs
GRID_PREDICT_CHUNK = 65_536

__all__ = [
    "AdditiveBaseline",
    "AdditiveRidgeBaseline",
    "Baseline",
    "BaselineContext",
    "BaselineData",
    "FeatureTreesBaseline",
    "additive_alpha",
    "baseline_specs",
    "build_baseline",
    "FeatureBaseline",
    "fit_additive_baseline",
    "fit_baselines",
    "fit_feature_baseline",
    "run_baselines",
    "SetFeaturizer",
    "TreeArrays",
    "set_features",
    "warm_start_model",
]


@dataclass
class AdditiveBaseline:
    """Fitted per-gene additive model (coefficients in the units of the targets it was fitted on).

    Attributes:
        coef: ``[N, T]`` per-gene effects (0 for genes never seen in training for that target).
        intercept: ``[T]``.
        alpha: the ridge penalty used.
        num_train: ``[T]`` training rows used per target.
    """

    coef: Tensor
    intercept: Tensor
    alpha: float
    num_train: list[int]

    def predict_sets(self, pert_idx: Tensor, ptr: Tensor) -> Tensor:
        """Predictions ``[S, T]`` for flat index sets (``pert_idx [P]``, offsets ``ptr [S+1]``)."""
        ptr = ptr.to(torch.long)
        sizes = ptr[1:] - ptr[:-1]
        row = torch.repeat_interleave(torch.arange(sizes.numel()), sizes)
        out = self.intercept.to(torch.float64).expand(sizes.numel(), -1).clone()
        out.index_add_(0, row, self.coef.to(torch.float64)[pert_idx.to(torch.long)])
        return out

    def predict(self, ds: PerturbationDataset, indices: Tensor | None = None) -> Tensor:
        """Predictions ``[S, T]`` (float64) for the samples of ``ds`` (or the given subset)."""
        if indices is not None:
            ds = ds.subset(indices)
        return self.predict_sets(ds.pert_idx, ds.ptr)


def _gram(padded: Tensor, mask: Tensor, w: Tensor, n: int) -> Tensor:
    """``X^T W X`` ``[n, n]`` from padded index sets (K^2 entries per sample, no design matrix)."""
    k = padded.shape[1]
    a = padded.unsqueeze(2).expand(-1, k, k)
    b = padded.unsqueeze(1).expand(-1, k, k)
    m = (mask.unsqueeze(2) & mask.unsqueeze(1))
    ww = w.view(-1, 1, 1).expand(-1, k, k)
    flat = (a[m] * n + b[m]).to(torch.long)
    g = torch.zeros(n * n, dtype=torch.float64)
    g.index_add_(0, flat, ww[m])
    return g.view(n, n)


def fit_additive_baseline(
    ds: PerturbationDataset,
    train_idx: Tensor,
    *,
    alpha: float = 1.0,
    y: Tensor | None = None,
    use_weights: bool = True,
    weight: Tensor | None = None,
) -> AdditiveBaseline:
    """Fit the per-gene additive ridge model on ``train_idx`` (see the module docstring).

    Args:
        ds: the data set (gene index sets and targets).
        train_idx: training sample indices.
        alpha: ridge penalty (> 0).
        y: targets ``[S, T]`` to fit instead of ``ds.y`` (e.g. normalised targets); NaN = missing.
        use_weights: weight rows by ``ds.weight`` (as the training loss does).
        weight: ``[len(train_idx)]`` row weights used instead of ``ds.weight`` (a grid's sampling weights).
    """
    if alpha <= 0:
        raise ValueError("alpha must be > 0")
    train_idx = torch.as_tensor(train_idx, dtype=torch.long)
    if train_idx.numel() == 0:
        raise ValueError("the additive baseline needs at least one training sample")
    yy = (ds.y if y is None else y)[train_idx].to(torch.float64)
    if yy.dim() == 1:
        yy = yy.unsqueeze(1)
    sub = ds.subset(train_idx)
    padded, mask = _padded_sets(sub)
    base_w = sub.weight.to(torch.float64) if use_weights else torch.ones(len(sub), dtype=torch.float64)  # type: ignore[union-attr]
    if weight is not None:
        base_w = torch.as_tensor(weight, dtype=torch.float64).reshape(-1)
    num_genes, t = ds.num_genes, yy.shape[1]
    coef = torch.zeros(num_genes, t, dtype=torch.float64)
    intercept = torch.zeros(t, dtype=torch.float64)
    counts: list[int] = []
    for j in range(t):
        rows = ~torch.isnan(yy[:, j]) & (base_w > 0)
        counts.append(int(rows.sum()))
        if not bool(rows.any()):
            intercept[j] = float("nan")
            continue
        p, mk, w, yj = padded[rows], mask[rows], base_w[rows], yy[rows, j]
        genes = torch.unique(p[mk])  # genes seen in training for this target
        local = torch.full((num_genes,), -1, dtype=torch.long)
        local[genes] = torch.arange(genes.numel())
        lp = torch.where(mk, local[p], torch.zeros_like(p))
        na = genes.numel()
        sw = w.sum()
        xw = torch.zeros(na, dtype=torch.float64).index_add_(0, lp[mk], w.view(-1, 1).expand_as(lp)[mk])
        xwy = torch.zeros(na, dtype=torch.float64).index_add_(0, lp[mk], (w * yj).view(-1, 1).expand_as(lp)[mk])
        y_bar = (w * yj).sum() / sw
        x_bar = xw / sw
        a = _gram(lp, mk, w, na) - sw * torch.outer(x_bar, x_bar)
        a.diagonal().add_(alpha)
        rhs = xwy - y_bar * xw
        chol, info = torch.linalg.cholesky_ex(a)
        if int(info) == 0:
            beta = torch.cholesky_solve(rhs.unsqueeze(1), chol).squeeze(1)
        else:  # pragma: no cover - alpha > 0 makes A positive definite; guard against round-off
            beta = torch.linalg.lstsq(a, rhs.unsqueeze(1)).solution.squeeze(1)
        coef[genes, j] = beta
        intercept[j] = y_bar - x_bar @ beta
    return AdditiveBaseline(coef=coef, intercept=intercept, alpha=float(alpha), num_train=counts)


# ------------------------------------------------------------------------------------- feature baseline
def _degree_block(graph: Any) -> tuple[np.ndarray, list[str]]:
    n = graph.num_nodes
    cols, names = [], []
    for t in graph.edge_type_names:
        ei = graph.edge_types[t].edge_index.to(torch.long)
        deg = torch.bincount(torch.cat([ei[0], ei[1]]), minlength=n).double()
        cols.append(torch.log1p(deg).numpy())
        names.append(f"log1p_degree.{t}")
    return np.stack(cols, 1), names


def _ordered_sum(v: Tensor) -> Tensor:
    """Sum over dim 1 in sorted order: the same bits whatever order the set's genes (or pairs) come in, so
    that no tree threshold sees a float-rounding difference between (a, b, c) and (c, b, a)."""
    return v.sort(dim=1).values.sum(1)


class SetFeaturizer:
    """The hand-made features of :func:`set_features` for any gene sets, from a graph and the per-gene
    inputs alone (what a run folder stores), so that a fitted :class:`FeatureBaseline` scores sets of a
    file as well as the run's own splits.

    Args:
        graph: the :class:`~cellgi.data.cellgraph.CellGraph`.
        gene_features: ``[N, F]`` per-gene inputs (``DataBundle.gene_features``; None or empty: none).
        feature_names: their column names (``go.*`` columns are used as GO-slim terms).
    """

    def __init__(self, graph: Any, gene_features: Tensor | None = None, feature_names: Sequence[str] = ()):
        from cellgi.nn.relations import PairRelations

        deg, deg_names = _degree_block(graph)
        gene_cols, gene_names = [deg], deg_names
        self.go: Tensor | None = None
        names = list(feature_names or [])
        if gene_features is not None and gene_features.numel():
            f = gene_features.detach().cpu().numpy().astype(np.float64)
            is_go = np.array([n.startswith("go.") and n != "go.missing" for n in names], dtype=bool)
            if is_go.any():
                self.go = torch.from_numpy(f[:, is_go]).to(torch.float32)
            keep = ~is_go
            gene_cols.append(f[:, keep])
            gene_names += [n for n, k in zip(names, keep) if k]
        self.per_gene = torch.from_numpy(np.concatenate(gene_cols, 1)).to(torch.float32)  # [N, Fg]
        self.relations = PairRelations(graph, graph.edge_type_names)
        rel = self.relations.feature_names
        cols = ([f"mean.{n}" for n in gene_names] + [f"min.{n}" for n in gene_names]
                + [f"max.{n}" for n in gene_names] + [f"pair_mean.{n}" for n in rel] + [f"pair_max.{n}" for n in rel])
        if self.go is not None:
            cols += ["pair_mean.shared_go", "pair_max.shared_go", "pair_mean.jaccard_go"]
        cols.append("set_size")
        self.names: list[str] = cols

    @torch.no_grad()
    def __call__(self, padded: Tensor, mask: Tensor, *, batch_size: int = 4096) -> np.ndarray:
        """Features ``[S, D]`` of the sets ``padded [S, K]`` (gene indices; ``mask [S, K]`` marks the real ones)."""
        from cellgi.data.batch import iter_batches

        padded, mask = padded.to(torch.long).cpu(), mask.to(torch.bool).cpu()
        out = []
        for p, m in zip(iter_batches(padded, batch_size), iter_batches(mask, batch_size)):
            k = p.shape[1]
            mf = m.unsqueeze(-1).to(torch.float32)
            x = self.per_gene[p]  # [b, k, Fg]
            cnt = mf.sum(1).clamp_min(1.0)
            mean = _ordered_sum(x * mf) / cnt
            big = torch.finfo(torch.float32).max
            mn = torch.where(m.unsqueeze(-1), x, torch.full_like(x, big)).amin(1)
            mx = torch.where(m.unsqueeze(-1), x, torch.full_like(x, -big)).amax(1)
            iu, ju = torch.triu_indices(k, k, 1)
            pm = (m[:, iu] & m[:, ju]).to(torch.float32)  # [b, P]
            pcnt = pm.sum(1, keepdim=True).clamp_min(1.0)
            r = self.relations(p, m)[:, iu, ju]  # [b, P, R]
            pair = [_ordered_sum(r * pm.unsqueeze(-1)) / pcnt, (r * pm.unsqueeze(-1)).amax(1)]
            parts = [mean, mn, mx, *pair]
            if self.go is not None:
                g = self.go[p]  # [b, k, T]
                shared = (g[:, iu] * g[:, ju]).sum(-1)  # [b, P]
                union = (g[:, iu] + g[:, ju]).clamp_max(1).sum(-1).clamp_min(1.0)
                jac = shared / union
                parts += [_ordered_sum((shared * pm).unsqueeze(-1)) / pcnt, (shared * pm).amax(1, keepdim=True),
                          _ordered_sum((jac * pm).unsqueeze(-1)) / pcnt]
            parts.append(m.sum(1, keepdim=True).to(torch.float32))
            out.append(torch.cat(parts, 1).numpy())
        return np.concatenate(out, 0) if out else np.zeros((0, len(self.names)), dtype=np.float32)


def _padded_sets(ds: PerturbationDataset) -> tuple[Tensor, Tensor]:
    """The gene sets of ``ds``: ``padded [S, K]`` (gene indices, 0 where padded) and ``mask [S, K]``."""
    padded = ds.padded(fill=0).to(torch.long)
    return padded, torch.arange(padded.shape[1]).unsqueeze(0) < ds.set_sizes.unsqueeze(1)


def set_features(
    bundle: Any, indices: Tensor | None = None, *, batch_size: int = 4096
) -> tuple[np.ndarray, list[str]]:
    """Hand-made, order-invariant features ``[S, D]`` of the gene sets of ``bundle.dataset`` (see the module
    docstring) and their names (:class:`SetFeaturizer` on the bundle's graph and per-gene inputs)."""
    ds = bundle.dataset if indices is None else bundle.dataset.subset(torch.as_tensor(indices, dtype=torch.long))
    feat = SetFeaturizer(bundle.graph, getattr(bundle, "gene_features", None), getattr(bundle, "feature_names", ()))
    return feat(*_padded_sets(ds), batch_size=batch_size), list(feat.names)


@dataclass
class FeatureBaseline:
    """Fitted gradient-boosted trees per target (None where a target had no training rows)."""

    models: list[Any]
    feature_names: list[str]
    info: dict[str, Any] = field(default_factory=dict)

    def predict(self, x: np.ndarray) -> Tensor:
        if x.shape[1] != len(self.feature_names) and self.feature_names:
            raise ValueError(f"the feature baseline was fitted on {len(self.feature_names)} features, got {x.shape[1]}")
        cols = []
        for m in self.models:
            cols.append(np.full(x.shape[0], np.nan) if m is None else m.predict(x))
        return torch.from_numpy(np.stack(cols, 1)).to(torch.float64)

    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain containers only (saved with ``torch.save``, read with ``weights_only=True``):
        each target's trees as flat node arrays (:class:`TreeArrays`)."""
        return {"feature_names": list(self.feature_names),
                "models": [None if m is None else TreeArrays.of(m).state_dict() for m in self.models]}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> "FeatureBaseline":
        return cls([None if m is None else TreeArrays.from_state_dict(m) for m in state["models"]],
                   list(state["feature_names"]))


_NODE_FIELDS = ("value", "feature_idx", "num_threshold", "missing_go_to_left", "left", "right", "is_leaf")


@dataclass
class TreeArrays:
    """A fitted ``HistGradientBoostingRegressor`` (squared error, numeric features) as flat arrays, so
    that a run folder stores it without pickling code: the nodes of all trees one after the other
    (``left``/``right`` already offset to that flat index), the root of each tree, and the constant start.
    :meth:`predict` walks every tree at once and equals the estimator's own ``predict`` (tested)."""

    nodes: dict[str, np.ndarray]
    roots: np.ndarray
    baseline: float

    @classmethod
    def of(cls, model: Any) -> "TreeArrays":
        if getattr(model, "is_categorical_", None) is not None and np.any(model.is_categorical_):
            raise ValueError("categorical features cannot be stored as tree arrays")
        trees = [p[0] for p in model._predictors]  # one tree per iteration (single output)
        sizes = np.array([t.nodes.shape[0] for t in trees], dtype=np.int64)
        roots = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        nodes = {}
        for f in _NODE_FIELDS:
            parts = [t.nodes[f].astype(np.float64 if f in ("value", "num_threshold") else np.int64) for t in trees]
            if f in ("left", "right"):
                parts = [a + r for a, r in zip(parts, roots)]
            nodes[f] = np.concatenate(parts) if parts else np.zeros(0)
        return cls(nodes, roots, float(np.ravel(model._baseline_prediction)[0]))

    def _walk_tables(self) -> tuple[np.ndarray, ...]:
        """``(left, right, feature, threshold, missing_left, depth per tree)`` with every leaf its own child
        (a walk that reaches a leaf stays there), built once."""
        cached = getattr(self, "_tables", None)
        if cached is not None:
            return cached
        n = self.nodes
        leaf = n["is_leaf"] == 1
        idx = np.arange(leaf.size)
        left = np.where(leaf, idx, n["left"]).astype(np.intp)
        right = np.where(leaf, idx, n["right"]).astype(np.intp)
        feat = np.where(leaf, 0, n["feature_idx"]).astype(np.intp)
        thr = np.where(leaf, np.inf, n["num_threshold"]).astype(np.float64)
        depths = np.zeros(self.roots.size, dtype=np.int64)
        for t, r in enumerate(self.roots.tolist()):  # depth of each tree: its walks take that many steps
            frontier = np.array([r], dtype=np.int64)
            while True:
                inner = frontier[~leaf[frontier]]
                if inner.size == 0:
                    break
                frontier = np.concatenate([n["left"][inner], n["right"][inner]]).astype(np.int64)
                depths[t] += 1
        self._tables = (left, right, feat, thr, n["missing_go_to_left"] == 1, depths)
        return self._tables

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Sum over the trees of each row's leaf value, plus the start (the estimator's ``predict``,
        bitwise: the same float64 comparisons and the same summation order). Tree by tree, every row at
        once, a fixed number of steps per tree (its depth): about 6x faster than walking all trees
        together on 16,384 rows of the E-MAP stack (docs/performance.md)."""
        x = np.asarray(x, dtype=np.float64)
        s = x.shape[0]
        left, right, feat, thr, missing_left, depths = self._walk_tables()
        value = self.nodes["value"]
        xt = np.ascontiguousarray(x.T).ravel()  # feature f of row i at f * s + i
        cols = np.arange(s, dtype=np.intp)
        has_nan = bool(np.isnan(x).any())
        out = np.full(s, self.baseline)
        for root, depth in zip(self.roots.tolist(), depths.tolist()):
            node = np.full(s, root, dtype=np.intp)
            for _ in range(depth):
                v = xt[feat[node] * s + cols]
                go_left = v <= thr[node]
                if has_nan:
                    go_left |= np.isnan(v) & missing_left[node]
                node = np.where(go_left, left[node], right[node])
            out += value[node]
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"nodes": {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in self.nodes.items()},
                "roots": torch.from_numpy(self.roots), "baseline": self.baseline}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> "TreeArrays":
        return cls({k: v.numpy() for k, v in state["nodes"].items()}, state["roots"].numpy(), float(state["baseline"]))


def _require_sklearn():
    try:
        from sklearn.ensemble import HistGradientBoostingRegressor
    except ImportError as exc:  # pragma: no cover - scikit-learn is a dependency
        raise ImportError("the feature baseline needs scikit-learn: pip install scikit-learn") from exc
    return HistGradientBoostingRegressor


def fit_feature_baseline(
    x_train: np.ndarray,
    y_train: Tensor,
    w_train: Tensor | None = None,
    x_val: np.ndarray | None = None,
    y_val: Tensor | None = None,
    *,
    feature_names: Sequence[str] = (),
    seed: int = 0,
    max_iter: int = 500,
    learning_rate: float = 0.05,
    max_leaf_nodes: int = 15,
    min_samples_leaf: int = 20,
    l2_regularization: float = 1.0,
) -> FeatureBaseline:
    """One ``HistGradientBoostingRegressor`` per target on the rows that measured it; early stopping
    (20 rounds) on ``(x_val, y_val)`` when given, else on 10 % of the training rows."""
    hgb = _require_sklearn()
    y_train = y_train.view(y_train.shape[0], -1)
    models: list[Any] = []
    info: dict[str, Any] = {"iterations": []}
    for j in range(y_train.shape[1]):
        yj = y_train[:, j].double().numpy()
        rows = ~np.isnan(yj)
        if not rows.any():
            models.append(None)
            info["iterations"].append(0)
            continue
        kw: dict[str, Any] = {}
        if w_train is not None:
            kw["sample_weight"] = w_train.double().numpy()[rows]
        use_val = False
        if x_val is not None and y_val is not None and x_val.shape[0] >= 20:
            yv = y_val.view(y_val.shape[0], -1)[:, j].double().numpy()
            vr = ~np.isnan(yv)
            if vr.sum() >= 20:
                kw.update(X_val=x_val[vr], y_val=yv[vr])
                use_val = True
        model = hgb(
            learning_rate=learning_rate, max_iter=max_iter, max_leaf_nodes=max_leaf_nodes,
            min_samples_leaf=min_samples_leaf, l2_regularization=l2_regularization,
            early_stopping=True, n_iter_no_change=20, validation_fraction=None if use_val else 0.1,
            random_state=seed,
        )
        model.fit(x_train[rows], yj[rows], **kw)
        models.append(model)
        info["iterations"].append(int(model.n_iter_))
    return FeatureBaseline(models, list(feature_names), info)


# ------------------------------------------------------------------------------------ the `baseline` role
@dataclass
class BaselineContext:
    """What a baseline may read, when it is fitted and when a run folder that stores it is loaded: the
    cell graph, the per-gene inputs of ``data.features`` (``[N, F]``, None without) and their column names,
    and the number of targets."""

    graph: Any
    gene_features: Tensor | None = None
    feature_names: list[str] = field(default_factory=list)
    num_targets: int = 1

    @classmethod
    def of_bundle(cls, bundle: Any) -> "BaselineContext":
        return cls(bundle.graph, getattr(bundle, "gene_features", None), list(getattr(bundle, "feature_names", None) or []),
                   len(bundle.target_names))


@dataclass
class BaselineData:
    """A run's data for fitting a baseline: the data set and its splits (``train``, ``val``, ``test`` and the
    extra test subsets), the targets normalised as the network predicts them (``y [S, T]``, NaN = not
    measured), the run's seed, the :class:`BaselineContext`, and a cache for work that several baselines
    share (the set features)."""

    dataset: PerturbationDataset
    splits: dict[str, Tensor]
    y: Tensor
    context: BaselineContext
    seed: int = 0
    cache: dict[str, Any] = field(default_factory=dict)
    #: ``data.neutral_sampling`` (a grid's fit rows: listed pairs + a weighted share of neutral ones)
    sampling: Any = None

    @classmethod
    def of_bundle(cls, bundle: Any, seed: int = 0) -> "BaselineData":
        return cls(bundle.dataset, bundle.splits, bundle.normalizer.transform(bundle.dataset.y),
                   BaselineContext.of_bundle(bundle), int(seed), sampling=getattr(bundle, "sampling", None))

    @property
    def grid(self) -> bool:
        """Whether the data set is a genome-wide grid (:class:`~cellgi.data.grid.GridDataset`)."""
        from cellgi.data.grid import is_grid

        return is_grid(self.dataset)

    def fit_rows(self) -> tuple[Tensor, Tensor | None]:
        """Rows to fit on and their weights: the training split (``None``: the data set's own weights) or, on
        a grid, every listed training pair plus a seeded share (``data.neutral_sampling.share``) of the
        neutral ones weighted about ``1/share`` (:func:`~cellgi.data.grid.grid_fit_rows`)."""
        if not self.grid:
            return self.splits["train"], None
        if "fit_rows" not in self.cache:
            from cellgi.data.grid import grid_fit_rows

            ns = self.sampling
            seed = self.seed if ns is None or ns.seed is None else ns.seed
            self.cache["fit_rows"] = grid_fit_rows(self.dataset, self.splits["train"], 1.0 if ns is None else ns.share, seed)
        return self.cache["fit_rows"]

    def early_stop_rows(self) -> Tensor | None:
        """Validation rows for early stopping: the split, or on a grid a fixed uniform sample of
        :data:`GRID_EARLY_STOP_PAIRS` of it (None without validation)."""
        va = self.splits.get("val")
        if va is None or va.numel() == 0:
            return None
        if not self.grid:
            return va
        from cellgi.data.grid import uniform_sample

        return uniform_sample(va, GRID_EARLY_STOP_PAIRS, self.seed)

    def sets(self, idx: Tensor) -> tuple[Tensor, Tensor]:
        """The gene sets of samples ``idx``: ``padded [S, K]`` (gene indices, 0 where padded) and ``mask``."""
        if self.grid:  # pairs by index arithmetic
            p = self.dataset.pairs(idx)
            return p, torch.ones_like(p, dtype=torch.bool)
        return _padded_sets(self.dataset.subset(torch.as_tensor(idx, dtype=torch.long)))

    def features_of(self, idx: Tensor, featurizer: "SetFeaturizer | None" = None) -> np.ndarray:
        """Set features of samples ``idx``: rows of :meth:`set_features`, or on a grid computed for these
        pairs only (a grid's full feature matrix is never built)."""
        if not self.grid:
            return self.set_features()[0][torch.as_tensor(idx).numpy()]
        ctx = self.context
        feat = featurizer or SetFeaturizer(ctx.graph, ctx.gene_features, ctx.feature_names)
        return feat(*self.sets(torch.as_tensor(idx, dtype=torch.long)))

    def set_features(self) -> tuple[np.ndarray, list[str]]:
        """:class:`SetFeaturizer` features of every sample (computed once, then cached)."""
        if "set_features" not in self.cache:
            ctx = self.context
            feat = SetFeaturizer(ctx.graph, ctx.gene_features, ctx.feature_names)
            self.cache["set_features"] = (feat(*_padded_sets(self.dataset)), list(feat.names))
        return self.cache["set_features"]


class Baseline:
    """Base class of the ``baseline`` role: a predictor fitted beside the network on a run's training split.

    Members are registered with ``@register("baseline", NAME, summary=..., params=...)`` and listed in a
    spec's ``training.baselines``; each is reported in ``metrics.json`` as ``baseline_<NAME>.<split>.<metric>``
    and can join the network in ``training.stack``. The constructor takes the params and the keyword
    ``context`` (:class:`BaselineContext`). Subclasses implement:

    - :meth:`fit` (``BaselineData -> info dict``): fit on ``data.splits["train"]`` (the validation split
      may be read for early stopping; never the test splits);
    - :meth:`predict` (``padded [S, K], mask [S, K] -> [S, T]``): predictions, normalised units, for any
      gene sets, including sets of genes never seen in training (the stack scores files and screens);
    - :meth:`state_dict` / :meth:`load_state_dict`: tensors and plain containers only (a run folder is
      read with ``torch.load(weights_only=True)``: nothing in it executes code).

    :meth:`predict_samples` may be overridden to reuse work cached in ``data`` (the trees' set features).
    ``cellgi.testing.check_baseline`` checks a member against this contract.
    """

    #: registry name, set by subclasses (the ``baseline_<kind>`` metric prefix)
    kind: str = "baseline"

    def __init__(self, *, context: BaselineContext):
        self.context = context

    def fit(self, data: BaselineData) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def predict(self, padded: Tensor, mask: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def predict_samples(self, data: BaselineData, idx: Tensor) -> Tensor:
        """Predictions ``[S, T]`` for the samples ``idx`` of ``data``."""
        return self.predict(*data.sets(idx))

    def state_dict(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.kind!r})"


class AdditiveParams(Params):
    alpha: float = Field(1.0, gt=0, description="ridge penalty of the per-gene effects")


@register("baseline", "additive", summary="per-gene additive ridge model: b + sum of the deleted genes' effects "
          "(0 for genes without training samples)", params=AdditiveParams)
class AdditiveRidgeBaseline(Baseline):
    """The per-gene additive model of this module's docstring (:func:`fit_additive_baseline`), rows
    weighted as the training loss weights them. Genes never seen in training contribute 0."""

    kind = "additive"

    def __init__(self, alpha: float = 1.0, *, context: BaselineContext):
        super().__init__(context=context)
        self.alpha = float(alpha)
        self.fitted: AdditiveBaseline | None = None

    def _fit(self) -> AdditiveBaseline:
        if self.fitted is None:
            raise RuntimeError("the additive baseline is not fitted")
        return self.fitted

    def fit(self, data: BaselineData) -> dict[str, Any]:
        rows, w = data.fit_rows()
        self.fitted = fit_additive_baseline(data.dataset, rows, alpha=self.alpha, y=data.y, weight=w)
        return {"num_train": list(self.fitted.num_train)}

    def predict(self, padded: Tensor, mask: Tensor) -> Tensor:
        fit = self._fit()
        coef = fit.coef.to(torch.float64)[padded.to(torch.long).cpu()] * mask.cpu().unsqueeze(-1)
        return fit.intercept.to(torch.float64) + coef.sum(1)

    def predict_samples(self, data: BaselineData, idx: Tensor) -> Tensor:
        if data.grid:
            return _chunked(lambda part: self.predict(*data.sets(part)), idx)
        return self._fit().predict(data.dataset, idx)

    def state_dict(self) -> dict[str, Any]:
        fit = self._fit()
        return {"coef": fit.coef, "intercept": fit.intercept, "alpha": fit.alpha, "num_train": list(fit.num_train)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        coef = torch.as_tensor(state["coef"])
        if coef.shape[0] != self.context.graph.num_nodes:
            raise ValueError(f"the additive baseline has {coef.shape[0]} genes, the run {self.context.graph.num_nodes}")
        self.fitted = AdditiveBaseline(coef, torch.as_tensor(state["intercept"]), float(state["alpha"]),
                                       list(state["num_train"]))

    def __repr__(self) -> str:
        return f"AdditiveRidgeBaseline(alpha={self.alpha})"


class FeatureTreesParams(Params):
    max_iter: int = Field(500, ge=1, description="boosting rounds at most (early stopping ends sooner)")
    learning_rate: float = Field(0.05, gt=0, description="shrinkage of each tree")
    max_leaf_nodes: int = Field(15, ge=2, description="leaves per tree")
    min_samples_leaf: int = Field(20, ge=1, description="training rows per leaf at least")
    l2_regularization: float = Field(1.0, ge=0, description="L2 penalty on the leaf values")


@register("baseline", "features", summary="gradient-boosted trees on hand-made set features (per-gene inputs, "
          "degrees, pair relations in every graph, shared GO terms); scores unseen genes", params=FeatureTreesParams)
class FeatureTreesBaseline(Baseline):
    """scikit-learn's ``HistGradientBoostingRegressor`` per target on :class:`SetFeaturizer`'s features
    (:func:`fit_feature_baseline`; early stopping on the validation split when it has rows). Stored as
    node arrays (:class:`TreeArrays`); the features of any gene set are rebuilt from the context."""

    kind = "features"

    def __init__(self, max_iter: int = 500, learning_rate: float = 0.05, max_leaf_nodes: int = 15,
                 min_samples_leaf: int = 20, l2_regularization: float = 1.0, *, context: BaselineContext):
        super().__init__(context=context)
        self.hyper = dict(max_iter=max_iter, learning_rate=learning_rate, max_leaf_nodes=max_leaf_nodes,
                          min_samples_leaf=min_samples_leaf, l2_regularization=l2_regularization)
        self.fitted: FeatureBaseline | None = None
        self._featurizer: SetFeaturizer | None = None

    @property
    def featurizer(self) -> SetFeaturizer:
        if self._featurizer is None:
            ctx = self.context
            self._featurizer = SetFeaturizer(ctx.graph, ctx.gene_features, ctx.feature_names)
        return self._featurizer

    def _fit(self) -> FeatureBaseline:
        if self.fitted is None:
            raise RuntimeError("the feature baseline is not fitted")
        return self.fitted

    def fit(self, data: BaselineData) -> dict[str, Any]:
        if data.grid:  # listed pairs + a weighted neutral sample; features of those rows only
            tr, w_tr = data.fit_rows()
            va = data.early_stop_rows()
            x_tr, names = data.features_of(tr, self.featurizer), list(self.featurizer.names)
            x_va = data.features_of(va, self.featurizer) if va is not None else None
        else:
            x_all, names = data.set_features()
            tr = data.splits["train"]
            va = data.early_stop_rows()
            w = data.dataset.weight
            w_tr = w[tr] if w is not None else None
            x_tr, x_va = x_all[tr.numpy()], (x_all[va.numpy()] if va is not None else None)
        self.fitted = fit_feature_baseline(
            x_tr, data.y[tr], w_tr, x_va, data.y[va] if va is not None else None,
            feature_names=names, seed=data.seed, **self.hyper,
        )
        return dict(self.fitted.info)

    def predict(self, padded: Tensor, mask: Tensor) -> Tensor:
        return self._fit().predict(self.featurizer(padded, mask))

    def predict_samples(self, data: BaselineData, idx: Tensor) -> Tensor:
        if data.grid:
            return _chunked(lambda part: self._fit().predict(data.features_of(part, self.featurizer)), idx)
        return self._fit().predict(data.set_features()[0][torch.as_tensor(idx).numpy()])

    def state_dict(self) -> dict[str, Any]:
        return self._fit().state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        fit = FeatureBaseline.from_state_dict(state)
        if list(fit.feature_names) != list(self.featurizer.names):
            raise ValueError("the feature baseline was fitted on other set features than this run's "
                             f"({len(fit.feature_names)} vs {len(self.featurizer.names)} columns)")
        self.fitted = fit

    def __repr__(self) -> str:
        return f"FeatureTreesBaseline({', '.join(f'{k}={v}' for k, v in self.hyper.items())})"


def _chunked(fn: Any, idx: Tensor) -> Tensor:
    """``fn`` over chunks of :data:`GRID_PREDICT_CHUNK` samples, concatenated (a grid's held-out pairs)."""
    idx = torch.as_tensor(idx, dtype=torch.long)
    parts = [fn(idx[lo : lo + GRID_PREDICT_CHUNK]) for lo in range(0, idx.numel(), GRID_PREDICT_CHUNK)]
    return torch.cat(parts) if parts else torch.zeros(0, 1, dtype=torch.float64)


def baseline_specs(spec: Any, names: Sequence[str] | None = None) -> list[Any]:
    """The spec's ``training.baselines`` entries (only those of ``names``, in that order, when given)."""
    entries = list(getattr(spec.training, "baselines", None) or [])
    if names is None:
        return entries
    by = {e.type: e for e in entries}
    missing = [n for n in names if n not in by]
    if missing:
        raise KeyError(f"baseline(s) {missing} not in training.baselines ({sorted(by)})")
    return [by[n] for n in names]


def build_baseline(entry: Any, context: BaselineContext) -> Baseline:
    """A ``training.baselines`` entry (a spec object or ``{type: ..., **params}``) built from the registry."""
    from cellgi.registry import get_registry

    return get_registry("baseline").build(entry, context=context)


def additive_alpha(spec: Any) -> float:
    """The ridge penalty of the spec's additive baseline (1.0 when it lists none)."""
    for entry in getattr(spec.training, "baselines", None) or []:
        if entry.type == "additive":
            return float(entry.alpha)
    return 1.0


def fit_baselines(bundle: Any, spec: Any, *, features: bool | None = None,
                  names: Sequence[str] | None = None, data: BaselineData | None = None) -> dict[str, Baseline]:
    """The spec's baselines (``training.baselines``, or only ``names``) fitted on ``bundle``'s training
    split, targets normalised as the model predicts them: ``{"baseline_<type>": Baseline}``. Empty when the
    spec lists none. ``features=False`` leaves the feature trees out. ``data``: the :class:`BaselineData` to
    fit on (its cache, the set features, is shared with the caller)."""
    data = BaselineData.of_bundle(bundle, int(getattr(spec, "seed", 0))) if data is None else data
    out: dict[str, Baseline] = {}
    for entry in baseline_specs(spec, names):
        if features is False and entry.type == "features":
            continue
        b = build_baseline(entry, data.context)
        b.fit(data)
        out[f"baseline_{entry.type}"] = b
    return out


def run_baselines(bundle: Any, spec: Any, *, features: bool | None = None, fitted: dict[str, Any] | None = None,
                  data: BaselineData | None = None) -> dict[str, dict[str, dict[str, float]]]:
    """Fit the baselines on ``bundle``'s training split (:func:`fit_baselines`, or use ``fitted``) and
    evaluate them on every non-empty split (``bundle.splits``: train, val, test and any extra test subsets
    such as ``test_one_unseen``). Work shared between baselines (the set features) is done once.

    Args:
        bundle: the run's :class:`~cellgi.data.build.DataBundle`.
        spec: the run's spec (``training.baselines``, ``training.metrics``, ``seed``).
        features: ``False`` leaves the feature trees out.
        fitted: baselines already fitted on this bundle (what :func:`fit_baselines` returned).
        data: the :class:`BaselineData` the baselines were (or are to be) fitted on, with its cache.

    Returns:
        ``{"baseline_<type>": {split: metrics}}`` in original units, one entry per baseline.
    """
    from cellgi.metrics import InteractionMetrics

    ds, norm = bundle.dataset, bundle.normalizer
    if data is None:
        data = BaselineData.of_bundle(bundle, int(getattr(spec, "seed", 0)))
    fitted = fit_baselines(bundle, spec, features=features, data=data) if fitted is None else fitted
    stages = [s for s, idx in bundle.splits.items() if idx.numel() > 0]

    def metrics(pred: Tensor, idx: Tensor) -> dict[str, float]:
        m = InteractionMetrics.from_spec(bundle.target_names, spec.training.metrics, sync=False)
        m.update(norm.inverse(pred.to(torch.float32)), ds.y[idx], ds.weight[idx])
        return m.compute()

    def predictions(fit: Baseline) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        for s in stages:
            idx = bundle.splits[s]
            whole = bundle.splits.get("test")
            if data.grid and s.startswith("test_") and "test" in out and bool(torch.isin(idx, whole).all()):
                out[s] = out["test"][torch.searchsorted(whole, idx)]  # a grid's test subsets: predicted once
            else:
                out[s] = fit.predict_samples(data, idx)
        return out

    return {name: {s: metrics(pred, bundle.splits[s]) for s, pred in predictions(fit).items()}
            for name, fit in fitted.items()}


def warm_start_model(model: Any, bundle: Any, *, alpha: float = 1.0) -> list[str]:
    """Prepare a model's additive term from the training split where it asks for it: the ridge fit as the
    start of its per-gene effects (``wants_ridge_init``: ``pair_values`` with ``gene_bias_init: ridge``) and
    the memory of the training samples (``wants_memory``: ``pair_values`` with ``partner_memory``). Targets
    normalised as the model predicts them. Returns what was set (empty: nothing)."""
    term = getattr(model, "additive_term", None)
    done: list[str] = []
    if term is None:
        return done
    yn = bundle.normalizer.transform(bundle.dataset.y)
    if term.wants_memory:  # a declared per-instance capability (pair_values with partner_memory)
        train = bundle.dataset.subset(bundle.splits["train"])
        padded = train.padded(fill=-1)
        term.set_memory(padded.clamp_min(0), padded >= 0, yn[bundle.splits["train"]], model.additive_values)
        done.append(f"a memory of the {len(train):,} training samples")
    if term.wants_ridge_init:  # a declared per-instance capability (pair_values with ridge gene_bias_init)
        fit = fit_additive_baseline(bundle.dataset, bundle.splits["train"], alpha=alpha, y=yn)
        term.warm_start(fit.coef.to(torch.float32), fit.intercept.to(torch.float32))
        done.append("per-gene effects started from the ridge fit")
    return done
