"""Fitting a stack: the baselines on the training split, the blend's weights on validation.

What a fitted stack is and how a stacked folder predicts: :mod:`cellgi.predictors.stack`. This module
fits one after training (:func:`cellgi.experiments.series.train_series`: for a run, or for a seed series'
ensemble) and writes the folder's ``stack.pt`` and ``stack.json``; the ``stack.*`` metrics it returns go
into the run's ``metrics.json`` (or the series' ``replicates.json``), which that caller writes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from cellgi.baselines import Baseline, baseline_specs, fit_baselines
from cellgi.data.batch import dataset_sets, iter_batches
from cellgi.data.build import DataBundle, build_data
from cellgi.data.grid import GridDataset
from cellgi.data.perturbations import PerturbationDataset
from cellgi.experiments.blend import fit_blend, heldout_genes
from cellgi.metrics import InteractionMetrics
from cellgi.predictors.base import TrainedPredictor
from cellgi.predictors.stack import Stack, StackError
from cellgi.runfolder.checkpoint import atomic_torch_save
from cellgi.runfolder.runs import STACK_FILE, STACK_SUMMARY_FILE, write_json
from cellgi.spec import Spec
from cellgi.training.callbacks import flatten_metrics
from cellgi.training.runner import apply_saved_splits

__all__ = ["fit_stack", "fit_weights", "stack_folder"]


def fit_weights(columns: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Non-negative least squares of ``y [n]`` on ``columns [n, K]`` with a free intercept: ``(w [K], b)``
    (the ``nnls`` blend rule of :mod:`cellgi.experiments.blend`). Rows where ``y`` or a column is not
    finite are left out; when nothing correlates positively, the network (column 0) alone."""
    fit = fit_blend(columns, y, rule="nnls")
    return fit.weights, fit.intercept


def _member_columns(stack: Stack, loaded: TrainedPredictor, dataset: PerturbationDataset | GridDataset, idx: Tensor,
                    batch_size: int | None) -> list[Tensor]:
    """Each member's predictions ``[S, T]`` (normalised) on ``dataset``'s samples ``idx``: the network
    (``loaded``, a run or an ensemble) first, then the baselines."""
    scorer = loaded.scorer(batch_size)
    padded, mask = dataset_sets(dataset, idx)
    parts: list[list[Tensor]] = []
    for p, m in zip(iter_batches(padded, scorer.batch_size), iter_batches(mask, scorer.batch_size)):
        pred = scorer.score_padded(p, m)["pred"]
        parts.append([loaded.normalizer.transform(pred), *stack.baseline_predictions_padded(p, m)])
    return [torch.cat(col) for col in zip(*parts)]


def fit_stack(folder: str | Path, spec: Spec, loaded: TrainedPredictor, bundle: DataBundle | None = None,
              fitted: dict[str, Baseline] | None = None) -> tuple[dict[str, float], dict[str, Any]]:
    """Fit and write the stack of ``folder`` (a finished run, or a series whose ensemble is ``loaded``):
    the baselines of ``spec.training.stack`` on the training split (those of ``fitted``, the
    ``{"baseline_<type>": Baseline}`` already fitted on this bundle and spec, are used as they are), the
    weights on the validation split.
    Returns the blend's metrics on every non-empty split, keyed ``stack.<split>.<metric>``, and what
    ``stack.json`` holds.

    Raises:
        StackError: the split has no validation rows.
    """
    folder = Path(folder)
    cfg = spec.training.stack
    if bundle is None:
        bundle = build_data(spec.data, progress=False)
        apply_saved_splits(bundle, folder, None)  # a run folder's own split, mapped by sample (when it has one)
    ds, norm = bundle.dataset, bundle.normalizer
    val = bundle.splits.get("val")
    if val is None or val.numel() == 0:
        raise StackError("training.stack fits its weights on the validation split, and this split has none "
                         "(set data.split's validation fraction above 0)")
    entries = baseline_specs(spec, cfg.baselines)
    wanted = [f"baseline_{e.type}" for e in entries]
    fitted = dict(fitted or {})
    missing = [e.type for e in entries if f"baseline_{e.type}" not in fitted]
    if missing:
        fitted.update(fit_baselines(bundle, spec, names=missing))
    baselines = {name: fitted[name] for name in wanted}
    params = {f"baseline_{e.type}": e.model_dump(mode="json") for e in entries}
    stack = Stack(["network", *wanted], torch.zeros(0), torch.zeros(0), baselines, params)
    batch_size = None  # the scorer's default (cellgi.predictors.scoring.default_batch_size)
    yn = norm.transform(ds.y)

    def columns(idx: Tensor) -> list[Tensor]:
        return _member_columns(stack, loaded, ds, idx, batch_size)

    val_cols = columns(val)
    t = len(bundle.target_names)
    weights, intercept = torch.zeros(t, len(stack.members)), torch.zeros(t)
    alone: list[str] = []  # targets without enough measured validation rows keep the network alone
    blend = cfg.blend
    groups = None if blend.rule in ("nnls", "average") else heldout_genes(ds, val, bundle.splits["train"])
    how: dict[str, Any] = {}
    for j in range(t):
        try:
            fit = fit_blend(np.stack([c[:, j].numpy() for c in val_cols], 1), yn[val, j].numpy(), groups,
                            rule=blend.rule, folds=blend.folds, bootstraps=blend.bootstraps,
                            confidence=blend.confidence, seed=int(spec.seed))
            w, b, how[bundle.target_names[j]] = fit.weights, fit.intercept, fit.info
        except StackError:
            w, b = np.eye(len(stack.members))[0], 0.0
            alone.append(bundle.target_names[j])
        weights[j], intercept[j] = torch.from_numpy(w).float(), b
    stack.weights, stack.intercept = weights, intercept

    metrics: dict[str, float] = {}
    mspec = spec.training.metrics
    for split, idx in bundle.splits.items():
        if idx.numel() == 0:
            continue
        cols = val_cols if split == "val" else columns(idx)
        m = InteractionMetrics.from_spec(bundle.target_names, mspec, sync=False)
        m.update(norm.inverse(stack.combine(cols[0], cols[1:])), ds.y[idx], ds.weight[idx])
        metrics.update(flatten_metrics(f"stack.{split}", m.compute()))
    val_pearson = {}
    for name, c in zip(stack.members, val_cols):
        m = InteractionMetrics.from_spec(bundle.target_names, mspec, sync=False)
        m.update(norm.inverse(c), ds.y[val], ds.weight[val])
        val_pearson[name] = m.compute().get("pearson")
    val_pearson["stack"] = metrics.get("stack.val.pearson")
    stack.info = {"members": stack.members, "fit_on": "val", "val_rows": int(val.numel()),
                  "weights": {tn: dict(zip(stack.members, weights[j].tolist())) for j, tn in enumerate(bundle.target_names)},
                  "intercept": dict(zip(bundle.target_names, intercept.tolist())), "val_pearson": val_pearson,
                  "network_alone_for": alone, "blend": how}
    atomic_torch_save(stack.state_dict(), folder / STACK_FILE)
    write_json(folder / STACK_SUMMARY_FILE, stack.info)
    return metrics, stack.info


def stack_folder(folder: str | Path, spec: Spec, loaded: TrainedPredictor, bundle: DataBundle | None = None,
                 say: Callable[..., None] = print, fitted: dict[str, Baseline] | None = None) -> dict[str, float]:
    """:func:`fit_stack` after training (a run or a seed series; ``fitted``: the baselines the run already
    fitted for its metrics): one line on the weights and validation Pearson, or a warning
    when the stack cannot be fitted (the folder then predicts without it). Returns the ``stack.*`` metrics
    (empty without a stack)."""
    t0 = time.perf_counter()
    try:
        metrics, info = fit_stack(folder, spec, loaded, bundle, fitted)
    except StackError as exc:  # e.g. no measured validation row: the folder stands without its stack
        say(f"[yellow]warning:[/yellow] training.stack not fitted: {exc}; the folder predicts without it")
        return {}
    w = next(iter(info["weights"].values()))
    vp = info["val_pearson"]
    net, st = vp.get("network"), vp.get("stack")
    val = f"; val pearson {st:.4f} (network {net:.4f})" if net is not None and st is not None else ""
    say(f"stack: {' + '.join(f'{v:.2f} x {k}' for k, v in w.items())}{val}; test pearson "
        f"{metrics.get('stack.test.pearson', float('nan')):.4f} ({time.perf_counter() - t0:.1f}s)")
    return metrics
