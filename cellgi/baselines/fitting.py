"""Fitting and running a spec's baselines: :func:`fit_baselines` fits the spec's ``training.baselines`` on a
run's training split, :func:`run_baselines` also scores them on every split (``{name: {split: metrics}}``,
what ``metrics.json`` reports as ``baseline_<name>.<split>.<metric>``), and :func:`warm_start_model` starts a
model's additive term from the ridge fit and the training samples where the term asks for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import torch
from pydantic import BaseModel
from torch import Tensor

from cellgi.baselines.ridge import fit_additive_baseline
from cellgi.baselines.role import Baseline, BaselineContext, BaselineData
from cellgi.metrics.interaction import InteractionMetrics
from cellgi.registry import get_registry

if TYPE_CHECKING:
    from cellgi.data.build import DataBundle
    from cellgi.nn.model import LazyDango
    from cellgi.spec import Spec

__all__ = ["additive_alpha", "baseline_specs", "build_baseline", "fit_baselines", "run_baselines", "warm_start_model"]


def baseline_specs(spec: Spec, names: Sequence[str] | None = None) -> list[BaseModel]:
    """The spec's ``training.baselines`` entries (only those of ``names``, in that order, when given)."""
    entries = list(getattr(spec.training, "baselines", None) or [])
    if names is None:
        return entries
    by = {e.type: e for e in entries}
    missing = [n for n in names if n not in by]
    if missing:
        raise KeyError(f"baseline(s) {missing} not in training.baselines ({sorted(by)})")
    return [by[n] for n in names]


def build_baseline(entry: BaseModel | dict[str, object], context: BaselineContext) -> Baseline:
    """A ``training.baselines`` entry (a spec object or ``{type: ..., **params}``) built from the registry."""
    return get_registry("baseline").build(entry, context=context)


def additive_alpha(spec: Spec) -> float:
    """The ridge penalty of the spec's additive baseline (1.0 when it lists none)."""
    for entry in getattr(spec.training, "baselines", None) or []:
        if entry.type == "additive":
            return float(entry.alpha)
    return 1.0


def fit_baselines(bundle: DataBundle, spec: Spec, *, features: bool | None = None,
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


def run_baselines(bundle: DataBundle, spec: Spec, *, features: bool | None = None, fitted: dict[str, Baseline] | None = None,
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


def warm_start_model(model: LazyDango, bundle: DataBundle, *, alpha: float = 1.0) -> list[str]:
    """Prepare a model's additive term from the training split where it asks for it: the ridge fit as the
    start of its per-gene effects (``wants_ridge_init``: ``pair_values`` with ``gene_bias_init: ridge``) and
    the memory of the training samples (``wants_memory``: ``pair_values`` with ``partner_memory``). Targets
    normalised as the model predicts them. Returns what was set (empty: nothing)."""
    term = model.additive_term
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
