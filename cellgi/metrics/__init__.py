"""Metrics of an interaction screen, exact and weighted (docs/training.md#metrics).

The thresholds below are plain numbers, importable without torch (the spec takes its defaults from
them); everything else lives in :mod:`cellgi.metrics.interaction` and is importable from here too
(``from cellgi.metrics import InteractionMetrics``), loaded on first use so that reading a spec stays light.
"""

from __future__ import annotations

from typing import Any, Protocol

#: The default thresholds (Costanzo et al. 2016 epsilon cutoffs), by the field name that
#: :class:`~cellgi.spec.training.MetricsSpec` gives each; the spec takes its defaults from here.
DEFAULT_THRESHOLDS: dict[str, float] = {
    "strong_threshold": 0.08,
    "negative_threshold": -0.08,
    "negative_stringent_threshold": -0.12,
    "positive_threshold": 0.08,
    "positive_stringent_threshold": 0.16,
}

CLASSES: dict[str, tuple[str, str]] = {
    "neg": ("negative", "negative_threshold"),
    "neg_stringent": ("negative", "negative_stringent_threshold"),
    "pos": ("positive", "positive_threshold"),
    "pos_stringent": ("positive", "positive_stringent_threshold"),
}


class MetricSettings(Protocol):
    """What the metrics read of a run's ``training.metrics`` (:class:`~cellgi.spec.training.MetricsSpec`,
    which the spec layer above builds from these defaults): the class thresholds and whether weights count."""

    strong_threshold: float
    negative_threshold: float
    negative_stringent_threshold: float
    positive_threshold: float
    positive_stringent_threshold: float
    weighted: bool


#: the names :mod:`cellgi.metrics.interaction` defines (its ``__all__``), importable from here on first use
INTERACTION_NAMES = (
    "BASE_METRICS",
    "METRICS",
    "STRONG_METRICS",
    "Fed",
    "InteractionMetrics",
    "MetricEntry",
    "average_ranks",
    "is_interaction_target",
    "metric_key",
    "weighted_auroc",
    "weighted_average_precision",
    "weighted_pearson",
    "weighted_spearman",
)

__all__ = ["CLASSES", "DEFAULT_THRESHOLDS", "INTERACTION_NAMES", "MetricSettings", *INTERACTION_NAMES]


def __getattr__(name: str) -> Any:
    if name in INTERACTION_NAMES:
        from cellgi.metrics import interaction  # on first use, for startup time: it imports torch

        return getattr(interaction, name)
    raise AttributeError(f"module 'cellgi.metrics' has no attribute {name!r}")
