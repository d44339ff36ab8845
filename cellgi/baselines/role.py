"""The ``baseline`` role: the base class :class:`Baseline` a member subclasses, what it may read
(:class:`BaselineContext`) and the run's data it is fitted on (:class:`BaselineData`).

A member is registered with ``@register("baseline", NAME, summary=..., params=...)``, listed in a spec's
``training.baselines``, reported in ``metrics.json`` as ``baseline_<NAME>.<split>.<metric>`` and can join the
network in ``training.stack`` (docs/training.md#baselines).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch
from torch import Tensor

from cellgi.baselines.features import SetFeaturizer
from cellgi.data.batch import dataset_sets
from cellgi.data.cellgraph import CellGraph
from cellgi.data.grid import GridDataset, grid_fit_rows, is_grid, uniform_sample
from cellgi.data.perturbations import PerturbationDataset

if TYPE_CHECKING:
    from cellgi.data.build import DataBundle
    from cellgi.spec.data import NeutralSamplingSpec

__all__ = [
    "GRID_EARLY_STOP_PAIRS",
    "GRID_PREDICT_CHUNK",
    "Baseline",
    "BaselineContext",
    "BaselineData",
    "predict_in_chunks",
]

#: a grid's tree baseline stops early on a fixed uniform sample of this many validation pairs
GRID_EARLY_STOP_PAIRS = 50_000
#: pairs per chunk when a baseline predicts over a grid's held-out pairs
GRID_PREDICT_CHUNK = 65_536


@dataclass
class BaselineContext:
    """What a baseline may read, when it is fitted and when a run folder that stores it is loaded: the
    cell graph, the per-gene inputs of ``data.features`` (``[N, F]``, None without) and their column names,
    and the number of targets."""

    graph: CellGraph
    gene_features: Tensor | None = None
    feature_names: list[str] = field(default_factory=list)
    num_targets: int = 1

    @classmethod
    def of_bundle(cls, bundle: DataBundle) -> "BaselineContext":
        """The context of a run's data (a bundle without per-gene inputs gives none)."""
        return cls(bundle.graph, getattr(bundle, "gene_features", None), list(getattr(bundle, "feature_names", None) or []),
                   len(bundle.target_names))


@dataclass
class BaselineData:
    """A run's data for fitting a baseline: the data set and its splits (``train``, ``val``, ``test`` and the
    extra test subsets), the targets normalised as the network predicts them (``y [S, T]``, NaN = not
    measured), the run's seed, the :class:`BaselineContext`, and a cache for work that several baselines
    share (the set features)."""

    dataset: PerturbationDataset | GridDataset
    splits: dict[str, Tensor]
    y: Tensor
    context: BaselineContext
    seed: int = 0
    cache: dict[str, Any] = field(default_factory=dict)
    #: ``data.neutral_sampling`` (a grid's fit rows: listed pairs + a weighted share of neutral ones)
    sampling: NeutralSamplingSpec | None = None

    @classmethod
    def of_bundle(cls, bundle: DataBundle, seed: int = 0) -> "BaselineData":
        """The data of a run: its data set, splits and normalised targets."""
        return cls(bundle.dataset, bundle.splits, bundle.normalizer.transform(bundle.dataset.y),
                   BaselineContext.of_bundle(bundle), int(seed), sampling=getattr(bundle, "sampling", None))

    @property
    def grid(self) -> bool:
        """Whether the data set is a genome-wide grid (:class:`~cellgi.data.grid.GridDataset`)."""
        return is_grid(self.dataset)

    def fit_rows(self) -> tuple[Tensor, Tensor | None]:
        """Rows to fit on and their weights: the training split (``None``: the data set's own weights) or, on
        a grid, every listed training pair plus a seeded share (``data.neutral_sampling.share``) of the
        neutral ones weighted about ``1/share`` (:func:`~cellgi.data.grid.grid_fit_rows`)."""
        if not self.grid:
            return self.splits["train"], None
        if "fit_rows" not in self.cache:
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
        return uniform_sample(va, GRID_EARLY_STOP_PAIRS, self.seed)

    def sets(self, idx: Tensor) -> tuple[Tensor, Tensor]:
        """The gene sets of samples ``idx``: ``padded [S, K]`` (gene indices, 0 where padded) and ``mask``."""
        if self.grid:  # pairs by index arithmetic
            p = self.dataset.pairs(idx)
            return p, torch.ones_like(p, dtype=torch.bool)
        return dataset_sets(self.dataset, torch.as_tensor(idx, dtype=torch.long))

    def featurizer(self) -> SetFeaturizer:
        """A :class:`SetFeaturizer` of the context's graph and per-gene inputs."""
        ctx = self.context
        return SetFeaturizer(ctx.graph, ctx.gene_features, ctx.feature_names)

    def features_of(self, idx: Tensor, featurizer: SetFeaturizer | None = None) -> np.ndarray:
        """Set features of samples ``idx``: rows of :meth:`set_features`, or on a grid computed for these
        pairs only (a grid's full feature matrix is never built)."""
        if not self.grid:
            return self.set_features()[0][torch.as_tensor(idx).numpy()]
        feat = featurizer or self.featurizer()
        return feat(*self.sets(torch.as_tensor(idx, dtype=torch.long)))

    def set_features(self) -> tuple[np.ndarray, list[str]]:
        """:class:`SetFeaturizer` features of every sample (computed once, then cached)."""
        if "set_features" not in self.cache:
            feat = self.featurizer()
            self.cache["set_features"] = (feat(*dataset_sets(self.dataset)), list(feat.names))
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


def predict_in_chunks(fn: Callable[[Tensor], Tensor], idx: Tensor) -> Tensor:
    """``fn`` over chunks of :data:`GRID_PREDICT_CHUNK` samples, concatenated (a grid's held-out pairs)."""
    idx = torch.as_tensor(idx, dtype=torch.long)
    parts = [fn(idx[lo : lo + GRID_PREDICT_CHUNK]) for lo in range(0, idx.numel(), GRID_PREDICT_CHUNK)]
    return torch.cat(parts) if parts else torch.zeros(0, 1, dtype=torch.float64)
