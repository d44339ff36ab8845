"""Evaluation metrics in the original target scale, built on torchmetrics (correct under DDP).

:class:`InteractionMetrics` holds, per target, torchmetrics objects for MSE, MAE, Pearson and
Spearman; for *interaction* targets (see :func:`is_interaction_target`) also Pearson and Spearman on the
strong subset (``|measured| > strong_threshold``) and AUROC / AUPRC (average precision) of the
predicted strength ``|prediction|`` for "strong vs not strong" at the true prevalence of the data.

Every state is a torchmetrics state, so under DDP ``compute()`` gathers all ranks (sums are reduced,
stored predictions concatenated): the value equals a single-process evaluation of the same samples.
Rows whose target is NaN (not measured) are left out of that target's metrics.

Keys of :meth:`InteractionMetrics.compute` (one target ``T=1``): ``n, mse, mae, pearson, spearman`` and
for interaction targets ``n_strong, strong_prevalence, strong_pearson, strong_spearman, strong_auroc,
strong_auprc``. With several targets each key is ``<target>/<metric>`` and the unprefixed keys hold the
mean over targets (``n`` the total count). A metric that is undefined (fewer than two samples, no
strong sample, only strong samples) is ``nan``.
"""

from __future__ import annotations

import math
import re
import warnings
from typing import Sequence

import torch
from torch import Tensor, nn
from torchmetrics import Metric
from torchmetrics.aggregation import SumMetric
from torchmetrics.classification import BinaryAUROC, BinaryAveragePrecision
from torchmetrics.regression import MeanAbsoluteError, MeanSquaredError, PearsonCorrCoef, SpearmanCorrCoef

__all__ = [
    "BASE_METRICS",
    "STRONG_METRICS",
    "InteractionMetrics",
    "is_interaction_target",
    "metric_key",
]

#: metrics computed for every target
BASE_METRICS = ("n", "mse", "mae", "pearson", "spearman")
#: extra metrics of interaction targets (strong subset, strong-vs-not classification)
STRONG_METRICS = ("n_strong", "strong_prevalence", "strong_pearson", "strong_spearman", "strong_auroc", "strong_auprc")

_INTERACTION = re.compile(r"interaction|epsilon|tau", re.IGNORECASE)


def is_interaction_target(name: str) -> bool:
    """True for genetic-interaction scores (names containing ``interaction``, ``epsilon`` or ``tau``).

    Fitness-like targets (``fitness``, ``growth``, ...) get the regression metrics only: a "strong"
    threshold on ``|score|`` is meaningful for interaction scores centred at 0.
    """
    return bool(_INTERACTION.search(name))


def metric_key(target: str | None, metric: str) -> str:
    """``metric`` (single target or mean over targets) or ``target/metric``."""
    return metric if target is None else f"{target}/{metric}"


class _TargetMetrics(nn.Module):
    """The torchmetrics objects of one target."""

    def __init__(self, interaction: bool, threshold: float, **kw) -> None:
        super().__init__()
        self.interaction = interaction
        self.threshold = float(threshold)
        self.n = SumMetric(**kw)
        self.mse = MeanSquaredError(**kw)
        self.mae = MeanAbsoluteError(**kw)
        self.pearson = PearsonCorrCoef(**kw)
        self.spearman = SpearmanCorrCoef(**kw)
        if interaction:
            self.n_strong = SumMetric(**kw)
            self.strong_pearson = PearsonCorrCoef(**kw)
            self.strong_spearman = SpearmanCorrCoef(**kw)
            self.strong_auroc = BinaryAUROC(**kw)
            self.strong_auprc = BinaryAveragePrecision(**kw)
        for m in self.children():
            if isinstance(m, Metric):
                m.set_dtype(torch.float64)

    def update(self, pred: Tensor, target: Tensor) -> None:
        ok = ~torch.isnan(target)
        pred, target = pred[ok].to(torch.float64), target[ok].to(torch.float64)
        if target.numel() == 0:
            return
        self.n.update(torch.tensor(float(target.numel()), dtype=torch.float64, device=target.device))
        self.mse.update(pred, target)
        self.mae.update(pred, target)
        self.pearson.update(pred, target)
        self.spearman.update(pred, target)
        if self.interaction:
            strong = target.abs() > self.threshold
            self.n_strong.update(strong.sum().to(torch.float64))
            if bool(strong.any()):
                self.strong_pearson.update(pred[strong], target[strong])
                self.strong_spearman.update(pred[strong], target[strong])
            self.strong_auroc.update(pred.abs(), strong.to(torch.long))
            self.strong_auprc.update(pred.abs(), strong.to(torch.long))

    def compute(self) -> dict[str, float]:
        # every rank calls every compute() (they synchronise); the conditions below use synced counts
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*was called before the ``update`` method.*")
            return self._compute()

    def _compute(self) -> dict[str, float]:
        n = float(self.n.compute())
        nan = float("nan")
        out: dict[str, float] = {"n": n}
        if n < 1:
            out.update(mse=nan, mae=nan, pearson=nan, spearman=nan)
        else:
            out["mse"] = float(self.mse.compute())
            out["mae"] = float(self.mae.compute())
            out["pearson"] = float(self.pearson.compute()) if n >= 2 else nan
            out["spearman"] = float(self.spearman.compute()) if n >= 2 else nan
        if self.interaction:
            ns = float(self.n_strong.compute()) if n >= 1 else 0.0
            out["n_strong"] = ns
            out["strong_prevalence"] = ns / n if n >= 1 else nan
            out["strong_pearson"] = float(self.strong_pearson.compute()) if ns >= 2 else nan
            out["strong_spearman"] = float(self.strong_spearman.compute()) if ns >= 2 else nan
            both = 0 < ns < n
            out["strong_auroc"] = float(self.strong_auroc.compute()) if both else nan
            out["strong_auprc"] = float(self.strong_auprc.compute()) if both else nan
        return out


class InteractionMetrics(nn.Module):
    """Regression and strong-interaction metrics of ``T`` targets (see the module docstring).

    Args:
        target_names: the ``T`` target names (decide which are interaction targets and name the keys).
        strong_threshold: ``|score|`` above which an interaction is strong (original units).
        sync: gather across DDP ranks on ``compute()`` (set False for metrics that one process
            computes alone, e.g. the baseline's, while a process group is up).

    Call :meth:`update` with predictions and targets in the ORIGINAL scale (inverse-normalised).
    """

    def __init__(self, target_names: Sequence[str], strong_threshold: float = 0.08, *, sync: bool = True):
        super().__init__()
        if not target_names:
            raise ValueError("InteractionMetrics needs at least one target name")
        self.target_names = list(target_names)
        self.strong_threshold = float(strong_threshold)
        kw = {} if sync else {"sync_on_compute": False}
        self.per_target = nn.ModuleList(
            _TargetMetrics(is_interaction_target(t), strong_threshold, **kw) for t in self.target_names
        )

    @torch.no_grad()
    def update(self, pred: Tensor, target: Tensor) -> None:
        """Add ``pred [B, T]`` and ``target [B, T]`` (original scale; NaN targets are skipped)."""
        if pred.dim() == 1:
            pred = pred.unsqueeze(1)
        if target.dim() == 1:
            target = target.unsqueeze(1)
        if pred.shape != target.shape or pred.shape[1] != len(self.target_names):
            raise ValueError(
                f"metrics expect pred and target [B, {len(self.target_names)}], got "
                f"{tuple(pred.shape)} and {tuple(target.shape)}"
            )
        pred = pred.detach()
        for j, m in enumerate(self.per_target):
            m.update(pred[:, j], target[:, j])

    def compute(self) -> dict[str, float]:
        """Metric name -> value (``nan`` where undefined); see the module docstring for the keys."""
        per = [m.compute() for m in self.per_target]
        if len(per) == 1:
            return per[0]
        out: dict[str, float] = {}
        for name, vals in zip(self.target_names, per):
            out.update({metric_key(name, k): v for k, v in vals.items()})
        keys = list(dict.fromkeys(k for vals in per for k in vals))
        for k in keys:
            vs = [vals[k] for vals in per if k in vals]
            if k in ("n", "n_strong"):
                out[k] = float(sum(vs))
            else:
                finite = [v for v in vs if math.isfinite(v)]
                out[k] = float(sum(finite) / len(finite)) if finite else float("nan")
        return out

    def reset(self) -> None:
        for m in self.modules():
            if isinstance(m, Metric):
                m.reset()
