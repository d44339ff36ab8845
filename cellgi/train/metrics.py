"""Evaluation metrics in the original target scale, built on torchmetrics (correct under DDP).

:data:`METRICS` is the one table of metrics (a new metric is one :class:`MetricEntry` there: the
results, ``metrics.json``, the logs and the summary table pick it up). :class:`InteractionMetrics`
holds, per target, sample counts and a torchmetrics ``MetricCollection`` per kind of input: MSE, MAE,
Pearson and Spearman; for *interaction* targets (see :func:`is_interaction_target`) also Pearson and Spearman on the
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
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import Tensor, nn
from torchmetrics import Metric, MetricCollection
from torchmetrics.aggregation import SumMetric
from torchmetrics.classification import BinaryAUROC, BinaryAveragePrecision
from torchmetrics.regression import MeanAbsoluteError, MeanSquaredError, PearsonCorrCoef, SpearmanCorrCoef

__all__ = [
    "BASE_METRICS",
    "METRICS",
    "STRONG_METRICS",
    "InteractionMetrics",
    "MetricEntry",
    "is_interaction_target",
    "metric_key",
]

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


@dataclass(frozen=True)
class MetricEntry:
    """One metric: how to make it, what it is fed, and when it is defined.

    Attributes:
        name: the key in results (``pearson`` -> ``test.pearson`` in metrics.json).
        make: a torchmetrics ``Metric`` factory (called with torchmetrics keyword arguments).
        rows: ``"all"`` measured samples or only the ``"strong"`` ones (``|measured| > threshold``).
        inputs: ``"value"`` feeds ``(prediction, measured)``; ``"strength"`` feeds
            ``(|prediction|, measured is strong)`` (a classification of strong vs not strong).
        interaction_only: computed for interaction targets only.
        defined: ``(n, n_strong) -> bool``; the value is NaN otherwise (counts are gathered over ranks).
        table: shown in the run's summary table.
    """

    name: str
    make: Callable[..., Metric]
    rows: str = "all"
    inputs: str = "value"
    interaction_only: bool = False
    defined: Callable[[float, float], bool] = lambda n, ns: n >= 1
    table: bool = True


def _two(n: float, ns: float) -> bool:
    return n >= 2


#: every metric, in the order of results and tables: a new metric is one entry here
METRICS: tuple[MetricEntry, ...] = (
    MetricEntry("mse", MeanSquaredError),
    MetricEntry("mae", MeanAbsoluteError),
    MetricEntry("pearson", PearsonCorrCoef, defined=_two),
    MetricEntry("spearman", SpearmanCorrCoef, defined=_two),
    MetricEntry("strong_pearson", PearsonCorrCoef, rows="strong", interaction_only=True, defined=lambda n, ns: ns >= 2),
    MetricEntry("strong_spearman", SpearmanCorrCoef, rows="strong", interaction_only=True, defined=lambda n, ns: ns >= 2),
    MetricEntry("strong_auroc", BinaryAUROC, inputs="strength", interaction_only=True, defined=lambda n, ns: 0 < ns < n),
    MetricEntry("strong_auprc", BinaryAveragePrecision, inputs="strength", interaction_only=True,
                defined=lambda n, ns: 0 < ns < n),
)

#: metrics computed for every target
BASE_METRICS = ("n",) + tuple(e.name for e in METRICS if not e.interaction_only)
#: extra metrics of interaction targets (strong subset, strong-vs-not classification)
STRONG_METRICS = ("n_strong", "strong_prevalence") + tuple(e.name for e in METRICS if e.interaction_only)
#: the order of keys in results: counts first, then the table of entries
_ORDER = ("n", "mse", "mae", "pearson", "spearman", "n_strong", "strong_prevalence")


class _TargetMetrics(nn.Module):
    """The metrics of one target: sample counts and one MetricCollection per kind of input."""

    def __init__(self, interaction: bool, threshold: float, **kw) -> None:
        super().__init__()
        self.interaction = interaction
        self.threshold = float(threshold)
        self.entries = [e for e in METRICS if interaction or not e.interaction_only]
        self.n = SumMetric(**kw)
        self.n_strong = SumMetric(**kw)
        groups: dict[str, dict[str, Metric]] = {}
        for e in self.entries:
            groups.setdefault(f"{e.rows}_{e.inputs}", {})[e.name] = e.make(**kw)
        # compute_groups off: each metric keeps its own state (same numbers as separate metrics)
        self.groups = nn.ModuleDict({g: MetricCollection(ms, compute_groups=False) for g, ms in groups.items()})
        for m in self.modules():
            if isinstance(m, Metric):
                m.set_dtype(torch.float64)

    def update(self, pred: Tensor, target: Tensor) -> None:
        ok = ~torch.isnan(target)
        pred, target = pred[ok].to(torch.float64), target[ok].to(torch.float64)
        if target.numel() == 0:
            return
        strong = target.abs() > self.threshold
        self.n.update(torch.tensor(float(target.numel()), dtype=torch.float64, device=target.device))
        self.n_strong.update(strong.sum().to(torch.float64))
        for g, coll in self.groups.items():
            rows, inputs = g.split("_")
            if rows == "strong":
                if not bool(strong.any()):
                    continue
                p, t = pred[strong], target[strong]
            else:
                p, t = pred, target
            if inputs == "strength":
                coll.update(p.abs(), strong.to(torch.long) if rows == "all" else torch.ones_like(t, dtype=torch.long))
            else:
                coll.update(p, t)

    def compute(self) -> dict[str, float]:
        # every rank calls every compute() (they synchronise); the conditions below use synced counts
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*was called before the ``update`` method.*")
            return self._compute()

    def _compute(self) -> dict[str, float]:
        n = float(self.n.compute())
        ns = float(self.n_strong.compute()) if n >= 1 else 0.0
        nan = float("nan")
        out: dict[str, float] = {"n": n}
        if self.interaction:
            out["n_strong"] = ns
            out["strong_prevalence"] = ns / n if n >= 1 else nan
        for e in self.entries:
            metric = self.groups[f"{e.rows}_{e.inputs}"][e.name]
            out[e.name] = float(metric.compute()) if e.defined(n, ns) else nan
        order = [k for k in _ORDER if k in out] + [e.name for e in self.entries if e.name not in _ORDER]
        return {k: out[k] for k in order}


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
