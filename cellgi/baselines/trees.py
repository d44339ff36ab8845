"""The ``features`` baseline: gradient-boosted trees (scikit-learn's ``HistGradientBoostingRegressor``), one
model per target, on the set features of :class:`~cellgi.baselines.features.SetFeaturizer`. Unlike the
additive model it scores genes never seen in training. Early stopping uses the validation split
(gene-disjoint under gene-held-out splits). A run folder stores the trees as flat node arrays
(:class:`TreeArrays`), never pickled objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, Sequence

import numpy as np
import torch
from pydantic import Field
from torch import Tensor

from cellgi.baselines.features import SetFeaturizer
from cellgi.baselines.role import Baseline, BaselineContext, BaselineData, predict_in_chunks
from cellgi.registry import Params, register

if TYPE_CHECKING:
    from sklearn.ensemble import HistGradientBoostingRegressor

__all__ = [
    "FeatureBaseline",
    "FeatureTreesBaseline",
    "FeatureTreesParams",
    "Regressor",
    "TreeArrays",
    "fit_feature_baseline",
]


class Regressor(Protocol):
    """A fitted per-target model of :class:`FeatureBaseline`: scikit-learn's estimator after fitting, or its
    :class:`TreeArrays` after loading."""

    def predict(self, x: np.ndarray) -> np.ndarray: ...


@dataclass
class FeatureBaseline:
    """Fitted gradient-boosted trees per target (None where a target had no training rows)."""

    models: list[Regressor | None]
    feature_names: list[str]
    info: dict[str, Any] = field(default_factory=dict)

    def predict(self, x: np.ndarray) -> Tensor:
        """Predictions ``[S, T]`` (float64; NaN for a target without a model) of the set features ``x [S, D]``."""
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
        """The trees of :meth:`state_dict` (as :class:`TreeArrays`)."""
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
    def of(cls, model: HistGradientBoostingRegressor) -> "TreeArrays":
        """The trees of a fitted estimator (numeric features only)."""
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
        """The node arrays as tensors (``torch.load(weights_only=True)``-safe)."""
        return {"nodes": {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in self.nodes.items()},
                "roots": torch.from_numpy(self.roots), "baseline": self.baseline}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> "TreeArrays":
        """The trees of :meth:`state_dict`."""
        return cls({k: v.numpy() for k, v in state["nodes"].items()}, state["roots"].numpy(), float(state["baseline"]))


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
    # imported here for startup time: scikit-learn's ensemble module takes about 1.3 s to import and only a
    # fit needs it (a loaded run folder predicts with TreeArrays)
    from sklearn.ensemble import HistGradientBoostingRegressor

    y_train = y_train.view(y_train.shape[0], -1)
    models: list[Regressor | None] = []
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
                kw.update(X_val=x_val if vr.all() else x_val[vr], y_val=yv[vr])
                use_val = True
        model = HistGradientBoostingRegressor(
            learning_rate=learning_rate, max_iter=max_iter, max_leaf_nodes=max_leaf_nodes,
            min_samples_leaf=min_samples_leaf, l2_regularization=l2_regularization,
            early_stopping=True, n_iter_no_change=20, validation_fraction=None if use_val else 0.1,
            random_state=seed,
        )
        # all rows labelled (the usual case): the matrix itself, not a boolean-indexed copy of it
        model.fit(x_train if rows.all() else x_train[rows], yj[rows], **kw)
        models.append(model)
        info["iterations"].append(int(model.n_iter_))
    return FeatureBaseline(models, list(feature_names), info)


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
        """The set featurizer of the context (built once)."""
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
            return predict_in_chunks(lambda part: self._fit().predict(data.features_of(part, self.featurizer)), idx)
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
