"""Stacking: the network model blended with the baselines, the blend's weights fitted on validation.

With ``training.stack`` in a spec, ``cellgi train`` ends a run (or a seed series, for its seed ensemble)
by fitting the baselines it names (entries of ``training.baselines``: ``features``, the gradient-boosted
trees on hand-made set features; ``additive``, the per-gene ridge; or any registered ``baseline``
component, a plugin's included; as in ``metrics.json``'s ``baseline_*``) on the training split and
then, per target, the weights of

.. math::

    \\hat y = b + w_0\\, \\hat y_{\\text{network}} + \\sum_k w_k\\, \\hat y_k , \\qquad w \\ge 0,

by least squares on the validation split (normalised targets; gene-disjoint under gene-held-out splits,
so the weights are chosen as the test will use them, never on test genes). The folder then holds
``stack.pt`` (each fitted baseline's type, params and ``state_dict``: tensors and plain containers, trees
as node arrays, read with ``weights_only=True``, so opening a run folder still executes no code; the
baselines are rebuilt from the registry) and ``stack.json`` (members, weights, validation Pearson of
each member and of the blend), and every command that loads the folder (``cellgi predict``,
``cellgi evaluate``, ``cellgi screen``, :func:`cellgi.load`) predicts with the blend. The network alone
stays reachable: a checkpoint file (``RUN/checkpoints/best.ckpt``, ``RUN/model.pt``) or a member folder
of a series loads without the stack, and ``cellgi embed``, which needs one network model, refuses a
stacked folder naming that file.

Why: on the real E-MAP with genes held out, the network's seed ensemble and the trees err differently;
their blend was above both on pairs with one and with two unseen genes (docs/benchmarks.md).

The set features of the trees are computed from the graph and the per-gene inputs stored in the
checkpoint, so a stacked run scores files of genes it never saw as the network does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
from torch import Tensor

from cellgi.errors import CellgiError
from cellgi.train.checkpoint import CheckpointError, LoadedModel, atomic_torch_save

__all__ = ["STACK_FILE", "STACK_SUMMARY_FILE", "LoadedStack", "Stack", "StackError", "fit_stack", "fit_weights",
           "has_stack", "load_stack", "stack_folder"]

#: the fitted baselines and weights (tensors and plain containers)
STACK_FILE = "stack.pt"
#: the same weights and the validation numbers, for people
STACK_SUMMARY_FILE = "stack.json"
#: ``format`` value of ``stack.pt``
STACK_FORMAT = "cellgi-stack"


class StackError(CellgiError):
    """A stack that cannot be fitted (no validation rows) or used here."""

    exit_code = 2


def has_stack(path: str | Path) -> bool:
    """True for a run or replicates folder that ``cellgi train`` stacked (it holds ``stack.pt``)."""
    p = Path(path)
    return p.is_dir() and (p / STACK_FILE).is_file()


def fit_weights(columns: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Non-negative least squares of ``y [n]`` on ``columns [n, K]`` with a free intercept: ``(w [K], b)``.
    Rows where ``y`` or a column is not finite are left out."""
    from scipy.optimize import nnls

    ok = np.isfinite(y) & np.isfinite(columns).all(1)
    x, t = columns[ok].astype(np.float64), y[ok].astype(np.float64)
    if t.size < 2:
        raise StackError(f"the stack's weights need validation rows: {t.size} usable")
    xm, tm = x.mean(0), t.mean()
    w, _ = nnls(x - xm, t - tm)
    if not np.any(w > 0):  # nothing correlates positively: keep the network alone
        w = np.zeros_like(w)
        w[0] = 1.0
    return w, float(tm - xm @ w)


@dataclass
class Stack:
    """Fitted baselines and blend weights (see the module docstring).

    Attributes:
        members: ``["network", "baseline_features", ...]``, the order of ``weights``' columns.
        weights: ``[T, K]`` per target.
        intercept: ``[T]`` (normalised units).
        baselines: ``{member name: fitted baseline}`` (:class:`~cellgi.train.baselines.Baseline` components).
        params: ``{member name: {type: ..., **params}}``, what rebuilds each baseline on load.
        info: validation numbers (for ``stack.json``).
    """

    members: list[str]
    weights: Tensor
    intercept: Tensor
    baselines: dict[str, Any]
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def baseline_predictions(self, batch: Any) -> list[Tensor]:
        """Each baseline's predictions ``[B, T]`` (normalised, CPU) for a batch's gene sets, in ``members``
        order."""
        return self.baseline_predictions_padded(batch.pert_padded, batch.pert_mask)

    def baseline_predictions_padded(self, padded: Tensor, mask: Tensor) -> list[Tensor]:
        """:meth:`baseline_predictions` of padded gene sets ``padded [S, K]``, ``mask [S, K]``."""
        padded, mask = padded.cpu().to(torch.long).clamp_min(0), mask.cpu().to(torch.bool)
        return [self.baselines[name].predict(padded, mask).to(torch.float32) for name in self.members[1:]]

    def combine(self, network: Tensor, others: Sequence[Tensor]) -> Tensor:
        """The blend ``[S, T]`` of the network's normalised predictions and the baselines'."""
        cols = [network.float().cpu(), *[o.float().cpu() for o in others]]
        out = self.intercept.float().expand(network.shape[0], -1).clone()
        for k, c in enumerate(cols):
            out += self.weights[:, k].float() * c
        return out.to(network.device)

    def state_dict(self) -> dict[str, Any]:
        base = {name: {"params": dict(self.params[name]), "state": fit.state_dict()}
                for name, fit in self.baselines.items()}
        return {"format": STACK_FORMAT, "version": 2, "members": list(self.members), "weights": self.weights,
                "intercept": self.intercept, "baselines": base}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any], context: Any) -> "Stack":
        """Rebuild the stack of a run whose graph and per-gene inputs are ``context``
        (:class:`~cellgi.train.baselines.BaselineContext`). Each baseline is built from the registry by its
        stored type and params (a plugin's baseline needs its plugin installed) and given its state.
        Files of the first format (the two built-ins' states keyed by member name) load too."""
        from cellgi.train.baselines import build_baseline

        base: dict[str, Any] = {}
        params: dict[str, dict[str, Any]] = {}
        for name, st in state["baselines"].items():
            if "params" in st and "state" in st:
                p, inner = dict(st["params"]), st["state"]
            else:  # first format: baseline_features / baseline_additive with their state alone
                p, inner = {"type": name.removeprefix("baseline_")}, st
                if p["type"] == "additive":
                    p["alpha"] = float(st["alpha"])
            fit = build_baseline(p, context)
            fit.load_state_dict(inner)
            base[name], params[name] = fit, p
        return cls(list(state["members"]), state["weights"], state["intercept"], base, params)


def _member_columns(stack: Stack, loaded: Any, dataset: Any, idx: Tensor, batch_size: int | None) -> list[Tensor]:
    """Each member's predictions ``[S, T]`` (normalised) on ``dataset``'s samples ``idx``: the network
    (``loaded``, a run or an ensemble) first, then the baselines."""
    from cellgi.scoring import dataset_sets, iter_batches, scorer_for

    scorer = scorer_for(loaded, batch_size=batch_size)
    padded, mask = dataset_sets(dataset, idx)
    parts: list[list[Tensor]] = []
    for p, m in zip(iter_batches(padded, scorer.batch_size), iter_batches(mask, scorer.batch_size)):
        pred = scorer.score_padded(p, m)["pred"]
        parts.append([loaded.normalizer.transform(pred), *stack.baseline_predictions_padded(p, m)])
    return [torch.cat(col) for col in zip(*parts)]


def fit_stack(folder: str | Path, spec: Any, loaded: Any, bundle: Any = None,
              fitted: dict[str, Any] | None = None) -> tuple[dict[str, float], dict[str, Any]]:
    """Fit and write the stack of ``folder`` (a finished run, or a series whose ensemble is ``loaded``):
    the baselines of ``spec.training.stack`` on the training split (those of ``fitted``, the
    ``{"baseline_<type>": Baseline}`` already fitted on this bundle and spec, are used as they are), the
    weights on the validation split.
    Returns the blend's metrics on every non-empty split, keyed ``stack.<split>.<metric>``, and what
    ``stack.json`` holds.

    Raises:
        StackError: the split has no validation rows.
    """
    from cellgi.data import build_data
    from cellgi.train.baselines import baseline_specs, fit_baselines
    from cellgi.train.callbacks import flatten_metrics
    from cellgi.train.metrics import InteractionMetrics
    from cellgi.train.runs import write_json

    folder = Path(folder)
    cfg = spec.training.stack
    if bundle is None:
        from cellgi.train.runner import apply_saved_splits

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
    batch_size = None  # the scorer's default (cellgi.scoring.default_batch_size)
    yn = norm.transform(ds.y)

    def columns(idx: Tensor) -> list[Tensor]:
        return _member_columns(stack, loaded, ds, idx, batch_size)

    val_cols = columns(val)
    t = len(bundle.target_names)
    weights, intercept = torch.zeros(t, len(stack.members)), torch.zeros(t)
    alone: list[str] = []  # targets without enough measured validation rows keep the network alone
    for j in range(t):
        try:
            w, b = fit_weights(np.stack([c[:, j].numpy() for c in val_cols], 1), yn[val, j].numpy())
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
                  "network_alone_for": alone}
    atomic_torch_save(stack.state_dict(), folder / STACK_FILE)
    write_json(folder / STACK_SUMMARY_FILE, stack.info)
    return metrics, stack.info


def stack_folder(folder: str | Path, spec: Any, loaded: Any, bundle: Any = None,
                 say: Any = print, fitted: dict[str, Any] | None = None) -> dict[str, float]:
    """:func:`fit_stack` at the end of ``cellgi train`` (a run or a seed series; ``fitted``: the baselines
    the run already fitted for its metrics): one line on the weights and validation Pearson, or a warning
    when the stack cannot be fitted (the folder then predicts without it). Returns the ``stack.*`` metrics
    (empty without a stack)."""
    import time

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


@dataclass
class LoadedStack(LoadedModel):
    """A loaded run or ensemble (``network``) whose predictions are blended with its fitted baselines
    (:class:`Stack`). ``spec``, ``graph``, ``mapper``, ``normalizer``, ``meta`` are the network's."""

    #: what scorers dispatch on (cellgi.scoring)
    predictor_kind: ClassVar[str] = "stack"

    network: Any = None
    stack: Any = None

    @torch.no_grad()
    def predict(self, batch: Any) -> tuple[Tensor, dict[str, Any]]:
        pred, reps = self.network.predict(batch)
        net = self.normalizer.transform(pred.float())
        others = self.stack.baseline_predictions(batch)
        reps = dict(reps)
        reps["network"] = pred
        # each member alone, in original units (``cellgi evaluate`` reports them beside the blend)
        reps["stack_members"] = {"network": pred, **{name: self.normalizer.inverse(o).to(pred.device)
                                                      for name, o in zip(self.stack.members[1:], others)}}
        return self.normalizer.inverse(self.stack.combine(net, others)).to(pred.device), reps


def _gene_features(network: Any) -> Tensor | None:
    """The per-gene inputs stored with the network (the first member's, for an ensemble)."""
    from cellgi.ensemble import LoadedEnsemble

    first = network.members[0] if isinstance(network, LoadedEnsemble) else network
    return getattr(getattr(first.model, "embedding", None), "features", None)


def load_stack(folder: str | Path, network: LoadedModel) -> LoadedStack:
    """``network`` (the folder's run or ensemble, loaded) with the folder's stack.

    Raises:
        CheckpointError: ``stack.pt`` is unreadable, does not fit the network's genes and features, or
            names a baseline that is not installed.
    """
    from cellgi.registry import ComponentError
    from cellgi.train.baselines import BaselineContext
    from cellgi.train.checkpoint import load_weights_only

    p = Path(folder) / STACK_FILE
    obj = load_weights_only(p)
    context = BaselineContext(network.graph, _gene_features(network), list(network.meta.get("feature_names") or []),
                              len(network.target_names))
    try:
        if not isinstance(obj, dict) or obj.get("format") != STACK_FORMAT:
            raise ValueError(f"not a cellgi stack (format {obj.get('format') if isinstance(obj, dict) else None!r})")
        stack = Stack.from_state_dict(obj, context)
        if tuple(stack.weights.shape) != (len(network.target_names), len(stack.members)):
            raise ValueError(f"weights of shape {tuple(stack.weights.shape)} for {len(network.target_names)} targets")
    except (KeyError, TypeError, ValueError, AttributeError, ComponentError) as exc:
        raise CheckpointError(p, f"unusable stack: {exc}") from None
    return LoadedStack(path=Path(folder), model=network.model, spec=network.spec, target_names=list(network.target_names),
                       graph=network.graph, mapper=network.mapper, normalizer=network.normalizer, meta=network.meta,
                       network=network, stack=stack)
