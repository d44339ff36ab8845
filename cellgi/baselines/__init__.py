"""The ``baseline`` role and its built-in members: predictors fitted on a run's training split and reported
beside the model's metrics (``training.baselines``; a plugin adds one with ``@register("baseline", NAME)``,
see :class:`~cellgi.baselines.role.Baseline`). One module per job:

- :mod:`~cellgi.baselines.role`: the base class :class:`Baseline`, what a member may read
  (:class:`BaselineContext`) and the run's data it is fitted on (:class:`BaselineData`);
- :mod:`~cellgi.baselines.ridge`: ``additive``, a per-gene additive model (ridge regression on one-hot
  gene indicators, solved in closed form). A model that cannot beat it has learnt nothing beyond per-gene
  effects;
- :mod:`~cellgi.baselines.features`: hand-made, order-invariant features of gene sets (:class:`SetFeaturizer`);
- :mod:`~cellgi.baselines.trees`: ``features``, gradient-boosted trees on those set features (scores genes
  never seen in training), stored as node arrays (:class:`TreeArrays`);
- :mod:`~cellgi.baselines.propagation`: ``propagation``, the trees plus what the screen says about a gene's
  network neighbours;
- :mod:`~cellgi.baselines.fitting`: :func:`fit_baselines` / :func:`run_baselines` (fit the spec's baselines,
  score them on every split: ``{name: {split: metrics}}``) and :func:`warm_start_model`.

The public names of these modules are importable from ``cellgi.baselines``.
"""

from cellgi.baselines.ridge import AdditiveBaseline, AdditiveParams, AdditiveRidgeBaseline, fit_additive_baseline
from cellgi.baselines.features import SetFeaturizer, set_features
from cellgi.baselines.fitting import (
    additive_alpha,
    baseline_specs,
    build_baseline,
    fit_baselines,
    run_baselines,
    warm_start_model,
)
from cellgi.baselines.role import (
    GRID_EARLY_STOP_PAIRS,
    GRID_PREDICT_CHUNK,
    Baseline,
    BaselineContext,
    BaselineData,
    predict_in_chunks,
)
from cellgi.baselines.trees import (
    FeatureBaseline,
    FeatureTreesBaseline,
    FeatureTreesParams,
    Regressor,
    TreeArrays,
    fit_feature_baseline,
)

__all__ = [
    "GRID_EARLY_STOP_PAIRS",
    "GRID_PREDICT_CHUNK",
    "AdditiveBaseline",
    "AdditiveParams",
    "AdditiveRidgeBaseline",
    "Baseline",
    "BaselineContext",
    "BaselineData",
    "FeatureBaseline",
    "FeatureTreesBaseline",
    "FeatureTreesParams",
    "Regressor",
    "SetFeaturizer",
    "TreeArrays",
    "additive_alpha",
    "baseline_specs",
    "build_baseline",
    "fit_additive_baseline",
    "fit_baselines",
    "fit_feature_baseline",
    "predict_in_chunks",
    "run_baselines",
    "set_features",
    "warm_start_model",
]
