"""The ``additive`` baseline: a per-gene additive model, ridge regression on one-hot gene indicators.

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

from dataclasses import dataclass
from typing import Any

import torch
from pydantic import Field
from torch import Tensor

from cellgi.baselines.role import Baseline, BaselineContext, BaselineData, predict_in_chunks
from cellgi.data.batch import dataset_sets
from cellgi.data.perturbations import PerturbationDataset
from cellgi.registry import Params, register

__all__ = ["AdditiveBaseline", "AdditiveParams", "AdditiveRidgeBaseline", "fit_additive_baseline"]


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
    padded, mask = dataset_sets(sub)
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


class AdditiveParams(Params):
    """Params of the ``additive`` baseline."""

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
            return predict_in_chunks(lambda part: self.predict(*data.sets(part)), idx)
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
