"""Evaluation metrics in the original target scale, computed exactly over every evaluated sample.

:data:`METRICS` is the one table of metrics (a new metric is one :class:`MetricEntry` there: the
results, ``metrics.json``, the logs and the summary table pick it up). :class:`InteractionMetrics`
keeps, per target, every measured sample's prediction, measurement and weight (float32, a torchmetrics
state, so under DDP ``compute()`` gathers all ranks and the value equals a single-process evaluation of
the same samples) and computes at the end, in float64:

- every target: MSE, MAE, Pearson and Spearman (average ranks for ties: ``scipy.stats.spearmanr``);
- *interaction* targets (see :func:`is_interaction_target`): Pearson and Spearman on the strong subset
  (``|measured| > strong_threshold``), AUROC / AUPRC of ``|prediction|`` for strong vs not strong, and
  AUROC / AUPRC of negative interactions (score ``-prediction``, label ``measured < negative
  threshold``) and of positive ones (score ``prediction``, label ``measured > positive threshold``), at
  an intermediate and a stringent threshold each, with the share of the class beside each AUPRC (the
  AUPRC of a random predictor). The comparisons are strict, so a neutral pair (0) is a non-example of
  both classes. AUROC and AUPRC have scikit-learn's definitions (``roc_auc_score``,
  ``average_precision_score``; tested equal), computed in torch from one sort of the predictions.

Per-sample weights (``update(pred, target, weight)``) count as that many copies of the sample: every
metric of a weighted set equals the metric of the set with rows replicated ``weight`` times (ranks
included). Rows whose target is NaN (not measured) or whose weight is 0 are left out.

Keys of :meth:`InteractionMetrics.compute` (one target ``T=1``): ``n, mse, mae, pearson, spearman`` and
for interaction targets ``n_strong, strong_prevalence, strong_pearson, strong_spearman, strong_auroc,
strong_auprc`` and, for ``C`` in ``neg, neg_stringent, pos, pos_stringent``: ``auprc_C, prevalence_C,
auroc_C``. With several targets each key is ``<target>/<metric>`` and the unprefixed keys hold the mean
over targets (``n`` the total count). A metric that is undefined (fewer than two samples, a constant
input of a correlation, no sample or only samples of a class) is ``nan``.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torch import Tensor, nn
from torchmetrics import Metric

from cellgi.metrics import CLASSES, DEFAULT_THRESHOLDS, INTERACTION_NAMES, MetricSettings

__all__ = list(INTERACTION_NAMES)  # listed once, in the package (which loads this module on first use)

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


# ------------------------------------------------------------------------- exact weighted statistics
class _Sorted:
    """``x`` sorted once (ascending) with its sample weights and its tie groups: shared by the ranks and
    every ROC / PR curve of the same values (one sort of the predictions serves Spearman and the
    negative and positive classes). Group sums are differences of cumulative sums at the group ends
    (exact for integer weights)."""

    def __init__(self, x: Tensor, w: Tensor, unweighted: bool):
        self.order = torch.argsort(x)
        _, self.counts = torch.unique_consecutive(x[self.order], return_counts=True)
        self.ends = torch.cumsum(self.counts, 0) - 1
        self.w = torch.ones_like(x) if unweighted else w[self.order]
        self.w_after, self.w_before = self._cum(self.w)

    def gather(self, v: Tensor) -> Tensor:
        """``v`` in this sort's order."""
        return v[self.order]

    def _cum(self, v_sorted: Tensor) -> tuple[Tensor, Tensor]:
        """Per group (ascending), the sum of ``v`` over the groups up to it, with it and without it."""
        after = torch.cumsum(v_sorted, 0)[self.ends]
        before = torch.cat([torch.zeros(1, dtype=after.dtype), after[:-1]])
        return after, before

    def ranks(self) -> Tensor:
        """Weighted average ranks (see :func:`average_ranks`), in the original order."""
        gw = self.w_after - self.w_before
        per_sample = torch.repeat_interleave(self.w_before + (gw + 1.0) / 2.0, self.counts)
        out = torch.empty_like(per_sample)
        out[self.order] = per_sample
        return out

    def curve(self, label_sorted: Tensor, *, descending: bool) -> tuple[Tensor, Tensor]:
        """Weighted true and false positives above each distinct threshold, from the strictest down, for
        the score ``x`` (``descending``) or ``-x``; ``label_sorted`` is the label in this sort's order."""
        tp_after, tp_before = self._cum(self.w * label_sorted.to(torch.float64))
        if descending:
            tp = (tp_after[-1] - tp_before).flip(0)
            seen = (self.w_after[-1] - self.w_before).flip(0)
        else:
            tp, seen = tp_after, self.w_after
        return tp, seen - tp


def _f64(x: Tensor, w: Tensor | None) -> tuple[Tensor, Tensor]:
    x = x.detach().to("cpu", torch.float64).reshape(-1)
    return x, (torch.ones_like(x) if w is None else w.detach().to("cpu", torch.float64).reshape(-1))


def average_ranks(x: Tensor, weight: Tensor | None = None) -> Tensor:
    """Ranks of ``x`` (1-based, ties get the average of their ranks: ``scipy.stats.rankdata``'s
    ``average``), where a sample of weight ``w`` counts as ``w`` copies: its rank is the total weight of
    the smaller values plus ``(weight of its tie group + 1) / 2``. float64."""
    x, w = _f64(x, weight)
    return _Sorted(x, w, weight is None).ranks()


def weighted_pearson(x: Tensor, y: Tensor, weight: Tensor | None = None) -> float:
    """Pearson correlation of ``x`` and ``y`` with sample weights (``nan`` for a constant input)."""
    x, w = _f64(x, weight)
    y = y.detach().to("cpu", torch.float64).reshape(-1)
    ws = w.sum()
    if x.numel() < 2 or float(ws) <= 0:
        return float("nan")
    dx = x - (w * x).sum() / ws
    dy = y - (w * y).sum() / ws
    vx, vy = (w * dx * dx).sum(), (w * dy * dy).sum()
    if float(vx) <= 0 or float(vy) <= 0:
        return float("nan")
    r = float((w * dx * dy).sum() / torch.sqrt(vx * vy))
    return max(-1.0, min(1.0, r))


def weighted_spearman(x: Tensor, y: Tensor, weight: Tensor | None = None) -> float:
    """Spearman correlation: the weighted Pearson correlation of the weighted average ranks."""
    return weighted_pearson(average_ranks(x, weight), average_ranks(y, weight), weight)


def _average_precision(tps: Tensor, fps: Tensor) -> float:
    # scikit-learn's average_precision_score: sum over thresholds of (recall step) x precision
    recall = tps / tps[-1]
    precision = tps / (tps + fps)
    step = torch.diff(recall, prepend=torch.zeros(1, dtype=torch.float64))
    return float((step * precision).sum())


def _auroc(tps: Tensor, fps: Tensor) -> float:
    # the trapezoidal area under (fpr, tpr), from (0, 0): scikit-learn's roc_auc_score
    zero = torch.zeros(1, dtype=torch.float64)
    tpr, fpr = torch.cat([zero, tps / tps[-1]]), torch.cat([zero, fps / fps[-1]])
    return float(((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1]) / 2.0).sum())


def weighted_average_precision(score: Tensor, label: Tensor, weight: Tensor | None = None) -> float:
    """Average precision (AUPRC) of ``score`` for ``label`` (1 = the class), with sample weights; equals
    ``sklearn.metrics.average_precision_score(label, score, sample_weight=weight)``."""
    s, w = _f64(score, weight)
    srt = _Sorted(s, w, weight is None)
    return _average_precision(*srt.curve(srt.gather(_f64(label, None)[0]), descending=True))


def weighted_auroc(score: Tensor, label: Tensor, weight: Tensor | None = None) -> float:
    """Area under the ROC curve of ``score`` for ``label``, with sample weights; equals
    ``sklearn.metrics.roc_auc_score(label, score, sample_weight=weight)``."""
    s, w = _f64(score, weight)
    srt = _Sorted(s, w, weight is None)
    return _auroc(*srt.curve(srt.gather(_f64(label, None)[0]), descending=True))


# ---------------------------------------------------------------------------------- the metric table
#: the classes of interaction metrics: name -> (side, :class:`~cellgi.spec.training.MetricsSpec` field)


class Fed:
    """What a :class:`MetricEntry` is fed (float64, CPU): ``a`` (prediction, or the score of a
    classification), ``b`` (measured, or the label: 1 = the class) and ``w`` (weights), with the sorts
    computed once and shared between the entries of one evaluation.

    Args:
        sort_a: the sort of the values ``a`` is made of (``a`` itself, or ``-x`` of a sorted ``x``).
        descending: the score ``a`` decreases along ``sort_a`` reversed (``a = x``) or not (``a = -x``).
        label_sorted: classification: ``b`` in ``sort_a``'s order.
        sort_b: values: the sort of ``b`` (for ranks).
    """

    def __init__(self, a: Tensor, b: Tensor, w: Tensor, sort_a: Callable[[], _Sorted], *, descending: bool = True,
                 label_sorted: Callable[[], Tensor] | None = None, sort_b: Callable[[], _Sorted] | None = None):
        self.a, self.b, self.w = a, b, w
        self._sort_a, self._descending = sort_a, descending
        self._label_sorted, self._sort_b = label_sorted, sort_b
        self._curve: tuple[Tensor, Tensor] | None = None

    def curve(self) -> tuple[Tensor, Tensor]:
        """Weighted true / false positives of the score ``a`` for the label ``b``, from the highest score down."""
        if self._label_sorted is None:
            raise ValueError("a curve needs classification inputs (a score and a label)")
        if self._curve is None:  # AUPRC and AUROC share it
            self._curve = self._sort_a().curve(self._label_sorted(), descending=self._descending)
        return self._curve

    def spearman(self) -> float:
        """Weighted Spearman correlation of ``a`` and ``b`` (value inputs)."""
        if self._sort_b is None:
            raise ValueError("spearman needs value inputs (a prediction and a measurement)")
        return weighted_pearson(self._sort_a().ranks(), self._sort_b().ranks(), self.w)


@dataclass(frozen=True)
class MetricEntry:
    """One metric: what it is fed, how it is computed, and when it is defined.

    Attributes:
        name: the key in results (``pearson`` -> ``test.pearson`` in metrics.json).
        fn: ``Fed -> float``: ``(a, b, w)`` are ``(prediction, measured, weight)`` for value inputs and
            ``(score, label, weight)`` for a classification (label 1 = the class).
        inputs: ``"value"`` (all measured samples), ``"strong"`` (values of the strong samples only),
            ``"strength"`` (``|prediction|`` ranks strong above not strong) or a key of :data:`CLASSES`
            (``neg``: ``-prediction`` ranks ``measured < threshold`` first; ``pos``: ``prediction``
            ranks ``measured > threshold`` first).
        interaction_only: computed for interaction targets only.
        defined: ``(n, k) -> bool`` with ``n`` the samples fed and ``k`` those of the class
            (classifications; ``k = n`` for values); the value is NaN otherwise.
        table: shown in the run's summary table.
    """

    name: str
    fn: Callable[[Fed], float]
    inputs: str = "value"
    interaction_only: bool = False
    defined: Callable[[int, int], bool] = lambda n, k: n >= 1
    table: bool = True


def _mean(v: Tensor, w: Tensor) -> float:
    return float((w * v).sum() / w.sum())


def _pearson(f: Fed) -> float:
    return weighted_pearson(f.a, f.b, f.w)


def _ap(f: Fed) -> float:
    return _average_precision(*f.curve())


def _roc(f: Fed) -> float:
    return _auroc(*f.curve())


def _share(f: Fed) -> float:
    return _mean(f.b, f.w)


def _two(n: int, k: int) -> bool:
    return n >= 2


def _both_classes(n: int, k: int) -> bool:
    return 0 < k < n


def _class_entries(cls: str, table_auroc: bool) -> tuple[MetricEntry, ...]:
    return (  # the class's share beside its AUPRC: the AUPRC of a random predictor
        MetricEntry(f"auprc_{cls}", _ap, inputs=cls, interaction_only=True, defined=_both_classes),
        MetricEntry(f"prevalence_{cls}", _share, inputs=cls, interaction_only=True),
        MetricEntry(f"auroc_{cls}", _roc, inputs=cls, interaction_only=True, defined=_both_classes,
                    table=table_auroc),
    )


#: every metric, in the order of results and tables: a new metric is one entry here
METRICS: tuple[MetricEntry, ...] = (
    MetricEntry("mse", lambda f: _mean((f.a - f.b) ** 2, f.w)),
    MetricEntry("mae", lambda f: _mean((f.a - f.b).abs(), f.w)),
    MetricEntry("pearson", _pearson, defined=_two),
    MetricEntry("spearman", Fed.spearman, defined=_two),
    MetricEntry("strong_prevalence", _share, inputs="strength", interaction_only=True, table=False),
    MetricEntry("strong_pearson", _pearson, inputs="strong", interaction_only=True, defined=_two),
    MetricEntry("strong_spearman", Fed.spearman, inputs="strong", interaction_only=True, defined=_two),
    MetricEntry("strong_auroc", _roc, inputs="strength", interaction_only=True, defined=_both_classes),
    MetricEntry("strong_auprc", _ap, inputs="strength", interaction_only=True, defined=_both_classes),
    *_class_entries("neg", True),
    *_class_entries("neg_stringent", False),
    *_class_entries("pos", True),
    *_class_entries("pos_stringent", False),
)

#: metrics computed for every target
BASE_METRICS = ("n",) + tuple(e.name for e in METRICS if not e.interaction_only)
#: extra metrics of interaction targets (strong subset, the classification metrics)
STRONG_METRICS = ("n_strong",) + tuple(e.name for e in METRICS if e.interaction_only)
#: the first keys of results: counts, then the table of entries
_ORDER = ("n", "mse", "mae", "pearson", "spearman", "n_strong", "strong_prevalence")


class _Samples(Metric):
    """Every sample of one target: prediction, measurement and weight, float32 (12 bytes a sample),
    concatenated over DDP ranks on ``compute()``."""

    full_state_update = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("pred", default=[], dist_reduce_fx="cat")
        self.add_state("target", default=[], dist_reduce_fx="cat")
        self.add_state("weight", default=[], dist_reduce_fx="cat")

    def update(self, pred: Tensor, target: Tensor, weight: Tensor) -> None:
        self.pred.append(pred.to(torch.float32))  # type: ignore[attr-defined]
        self.target.append(target.to(torch.float32))  # type: ignore[attr-defined]
        self.weight.append(weight.to(torch.float32))  # type: ignore[attr-defined]

    def compute(self) -> tuple[Tensor, Tensor, Tensor]:
        def cat(v: Any) -> Tensor:
            if isinstance(v, list):
                return torch.cat(v) if v else torch.zeros(0)
            return v.reshape(-1)

        return cat(self.pred), cat(self.target), cat(self.weight)


class _TargetMetrics(nn.Module):
    """The metrics of one target: its samples and the thresholds that classify them."""

    def __init__(self, interaction: bool, thresholds: dict[str, float], **kw: Any) -> None:
        super().__init__()
        self.interaction = interaction
        self.thresholds = dict(thresholds)
        self.entries = [e for e in METRICS if interaction or not e.interaction_only]
        self.samples = _Samples(**kw)

    def update(self, pred: Tensor, target: Tensor, weight: Tensor) -> None:
        # kept as given (no host sync in a training step); unmeasured and weight-0 rows are dropped at compute
        self.samples.update(pred, target, weight)

    def compute(self) -> dict[str, float]:
        # every rank calls every compute() (they synchronise)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*was called before the ``update`` method.*")
            p, t, w = (v.detach().to("cpu", torch.float64) for v in self.samples.compute())
        if bool((w < 0).any()) or bool(torch.isnan(w).any()):
            raise ValueError("metric weights must be non-negative numbers")
        ok = ~torch.isnan(t) & (w > 0)
        return self._values(p[ok], t[ok], w[ok])

    def _values(self, p: Tensor, t: Tensor, w: Tensor) -> dict[str, float]:
        nan = float("nan")
        n = int(p.numel())
        strong = t.abs() > self.thresholds["strong"]
        out: dict[str, float] = {"n": float(n)}
        if self.interaction:
            out["n_strong"] = float(int(strong.sum()))
        unweighted = bool((w == 1).all())
        cache: dict[str, Any] = {}

        def memo(key: str, make: Callable[[], Any]) -> Callable[[], Any]:
            def get() -> Any:
                if key not in cache:
                    cache[key] = make()
                return cache[key]

            return get

        sort_p = memo("p", lambda: _Sorted(p, w, unweighted))
        t_by_p = memo("t_by_p", lambda: sort_p().gather(t))
        fed: dict[str, tuple[Fed, int]] = {}

        def feed(kind: str) -> tuple[Fed, int]:
            if kind == "value":
                return Fed(p, t, w, sort_p, sort_b=memo("t", lambda: _Sorted(t, w, unweighted))), n
            if kind == "strong":
                ps, ts, ws = p[strong], t[strong], w[strong]
                return Fed(ps, ts, ws, memo("ps", lambda: _Sorted(ps, ws, unweighted)),
                           sort_b=memo("ts", lambda: _Sorted(ts, ws, unweighted))), ps.numel()
            if kind == "strength":
                a = p.abs()
                sort_abs = memo("abs", lambda: _Sorted(a, w, unweighted))
                return Fed(a, strong.to(torch.float64), w, sort_abs,
                           label_sorted=lambda: sort_abs().gather(strong)), int(strong.sum())
            side, _ = CLASSES[kind]
            thr = self.thresholds[kind]
            label = t < thr if side == "negative" else t > thr
            # score -p (negative) or p (positive): every class's curve comes from the one sort of p
            by_p = (lambda: t_by_p() < thr) if side == "negative" else (lambda: t_by_p() > thr)
            score = -p if side == "negative" else p
            return Fed(score, label.to(torch.float64), w, sort_p, descending=side == "positive",
                       label_sorted=by_p), int(label.sum())

        for e in self.entries:
            if e.inputs not in fed:
                fed[e.inputs] = feed(e.inputs)
            f, k = fed[e.inputs]
            rows = f.a.numel()
            out[e.name] = e.fn(f) if rows and e.defined(rows, k) else nan
        first = [k for k in _ORDER if k in out]
        return {k: out[k] for k in first + [k for k in out if k not in first]}


def _thresholds(spec: MetricSettings | None, strong_threshold: float | None) -> dict[str, float]:
    def value(field: str) -> float:
        return float(DEFAULT_THRESHOLDS[field] if spec is None else getattr(spec, field))

    out = {"strong": float(value("strong_threshold") if strong_threshold is None else strong_threshold)}
    out.update({cls: value(field) for cls, (_, field) in CLASSES.items()})
    return out


class InteractionMetrics(nn.Module):
    """Regression and interaction metrics of ``T`` targets (see the module docstring).

    Args:
        target_names: the ``T`` target names (decide which are interaction targets and name the keys).
        strong_threshold: ``|score|`` above which an interaction is strong (original units; default the
            spec's, 0.08).
        spec: the ``training.metrics`` spec (thresholds of the negative / positive classes, ``weighted``);
            None: the defaults.
        sync: gather across DDP ranks on ``compute()`` (set False for metrics that one process
            computes alone, e.g. the baseline's, while a process group is up).

    Call :meth:`update` with predictions and targets in the ORIGINAL scale (inverse-normalised).
    """

    def __init__(
        self,
        target_names: Sequence[str],
        strong_threshold: float | None = None,
        *,
        spec: MetricSettings | None = None,
        sync: bool = True,
    ):
        super().__init__()
        if not target_names:
            raise ValueError("InteractionMetrics needs at least one target name")
        self.target_names = list(target_names)
        self.thresholds = _thresholds(spec, strong_threshold)
        self.strong_threshold = self.thresholds["strong"]
        #: whether :meth:`update`'s weights count (``training.metrics.weighted``)
        self.weighted = True if spec is None else bool(spec.weighted)
        kw = {} if sync else {"sync_on_compute": False}
        self.per_target = nn.ModuleList(
            _TargetMetrics(is_interaction_target(t), self.thresholds, **kw) for t in self.target_names
        )

    @classmethod
    def from_spec(cls, target_names: Sequence[str], spec: MetricSettings, *, sync: bool = True) -> "InteractionMetrics":
        """Metrics with a run's ``training.metrics`` spec (thresholds, ``weighted``)."""
        return cls(target_names, spec=spec, sync=sync)

    @torch.no_grad()
    def update(self, pred: Tensor, target: Tensor, weight: Tensor | None = None) -> None:
        """Add ``pred [B, T]``, ``target [B, T]`` (original scale; NaN targets are skipped) and optional
        per-sample weights ``weight [B]`` (non-negative, else :meth:`compute` raises ``ValueError``; a
        weight-0 row is skipped; ignored when the spec says ``weighted: false``). No host sync."""
        if pred.dim() == 1:
            pred = pred.unsqueeze(1)
        if target.dim() == 1:
            target = target.unsqueeze(1)
        if pred.shape != target.shape or pred.shape[1] != len(self.target_names):
            raise ValueError(
                f"metrics expect pred and target [B, {len(self.target_names)}], got "
                f"{tuple(pred.shape)} and {tuple(target.shape)}"
            )
        if weight is None or not self.weighted:
            w = torch.ones(pred.shape[0], dtype=torch.float32, device=pred.device)
        else:
            w = weight.detach().reshape(-1).to(device=pred.device, dtype=torch.float32)
            if w.numel() != pred.shape[0]:
                raise ValueError(f"metrics expect weight [{pred.shape[0]}], got {tuple(weight.shape)}")
        pred = pred.detach()
        target = target.to(pred.device)
        for j, m in enumerate(self.per_target):
            m.update(pred[:, j], target[:, j], w)

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
