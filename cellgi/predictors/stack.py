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

A :class:`LoadedStack` *has* its network predictor (one network or a seed ensemble, whatever the folder
loads as without its stack) and the fitted :class:`Stack`; fitting a stack is
:mod:`cellgi.experiments.stacking`'s.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Sequence

import torch
from torch import Tensor, nn

from cellgi.baselines import Baseline, BaselineContext, build_baseline
from cellgi.data.batch import PerturbationBatch
from cellgi.data.cellgraph import CellGraph
from cellgi.data.genes import GeneMapper
from cellgi.data.normalize import TargetNormalizer
from cellgi.errors import CellgiError
from cellgi.predictors.base import TrainedPredictor
from cellgi.predictors.ensemble import EnsembleError
from cellgi.predictors.network import LoadedModel
from cellgi.predictors.scoring import Scorer, StackScorer
from cellgi.provenance import file_digest, text_digest
from cellgi.registry import ComponentError
from cellgi.runfolder.checkpoint import CheckpointError, load_weights_only
from cellgi.runfolder.runs import STACK_FILE
from cellgi.spec import Spec

__all__ = ["LoadedStack", "Stack", "StackError", "load_stack"]

#: ``format`` value of ``stack.pt``
STACK_FORMAT = "cellgi-stack"


class StackError(CellgiError):
    """A stack that cannot be fitted (no validation rows) or used here."""

    exit_code = 2


@dataclass
class Stack:
    """Fitted baselines and blend weights (see the module docstring).

    Attributes:
        members: ``["network", "baseline_features", ...]``, the order of ``weights``' columns.
        weights: ``[T, K]`` per target.
        intercept: ``[T]`` (normalised units).
        baselines: ``{member name: fitted baseline}`` (:class:`~cellgi.baselines.Baseline` components).
        params: ``{member name: {type: ..., **params}}``, what rebuilds each baseline on load.
        info: validation numbers (for ``stack.json``).
    """

    members: list[str]
    weights: Tensor
    intercept: Tensor
    baselines: dict[str, Baseline]
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def baseline_predictions(self, batch: PerturbationBatch) -> list[Tensor]:
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
    def from_state_dict(cls, state: dict[str, Any], context: BaselineContext) -> Stack:
        """Rebuild the stack of a run whose graph and per-gene inputs are ``context``
        (:class:`~cellgi.baselines.BaselineContext`). Each baseline is built from the registry by its
        stored type and params (a plugin's baseline needs its plugin installed) and given its state.
        Files of the first format (the two built-ins' states keyed by member name) load too."""
        base: dict[str, Baseline] = {}
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


@dataclass
class LoadedStack:
    """A network predictor (one network or a seed ensemble) whose predictions are blended with its fitted
    baselines (:class:`Stack`); a :class:`~cellgi.predictors.base.TrainedPredictor` of kind ``stack``.
    ``spec``, ``graph``, ``mapper``, ``normalizer``, ``meta`` and ``model`` are the network's."""

    kind: ClassVar[str] = "stack"

    path: Path
    network: TrainedPredictor
    stack: Stack

    @property
    def spec(self) -> Spec:
        return self.network.spec

    @property
    def target_names(self) -> list[str]:
        return list(self.network.target_names)

    @property
    def graph(self) -> CellGraph:
        return self.network.graph

    @property
    def mapper(self) -> GeneMapper:
        return self.network.mapper

    @property
    def normalizer(self) -> TargetNormalizer:
        return self.network.normalizer

    @property
    def meta(self) -> dict[str, Any]:
        return self.network.meta

    @property
    def model(self) -> nn.Module:
        return self.network.model

    @torch.no_grad()
    def predict(self, batch: PerturbationBatch) -> tuple[Tensor, dict[str, Any]]:
        pred, reps = self.network.predict(batch)
        net = self.normalizer.transform(pred.float())
        others = self.stack.baseline_predictions(batch)
        reps = dict(reps)
        reps["network"] = pred
        # each member alone, in original units (``cellgi evaluate`` reports them beside the blend)
        reps["stack_members"] = {"network": pred, **{name: self.normalizer.inverse(o).to(pred.device)
                                                      for name, o in zip(self.stack.members[1:], others)}}
        return self.normalizer.inverse(self.stack.combine(net, others)).to(pred.device), reps

    def scorer(self, batch_size: int | None = None) -> Scorer:
        """The network's scorer blended with the baselines (:class:`~cellgi.predictors.scoring.StackScorer`)."""
        return StackScorer(self.network.scorer(batch_size), self.stack, self.normalizer)

    def default_batch_size(self) -> int:
        return self.network.default_batch_size()

    def networks(self) -> list[LoadedModel]:
        return self.network.networks()

    def one_network(self, command: str) -> LoadedModel:
        raise EnsembleError(
            f"{command} needs one network model, and {self.path} blends the network with its baselines "
            f"(training.stack, stack.json); give a checkpoint file of the network instead, e.g. "
            f"{self.networks()[0].path}"
        )

    def to(self, device: torch.device | str) -> LoadedStack:
        self.network.to(device)
        return self

    def digest(self) -> str:
        """The network's digest and ``stack.pt``'s bytes (``sha256:<hex>``)."""
        stack_file = Path(self.path) / STACK_FILE
        extra = file_digest(stack_file) if stack_file.is_file() else json.dumps(self.stack.info, sort_keys=True)
        return text_digest(f"stack|{self.network.digest()}|{extra}")

    def describe(self) -> str:
        """The blend in words: each member with its weight (the first target's)."""
        inner = self.network.describe()
        w = self.stack.weights[0].tolist()
        parts = [f"{wk:.2f} x {inner if name == 'network' else name}" for name, wk in zip(self.stack.members, w)]
        return "stack (weights fitted on validation): " + " + ".join(parts)


def load_stack(folder: str | Path, network: TrainedPredictor) -> LoadedStack:
    """``network`` (the folder's run or ensemble, loaded) with the folder's stack.

    Raises:
        CheckpointError: ``stack.pt`` is unreadable, does not fit the network's genes and features, or
            names a baseline that is not installed.
    """
    p = Path(folder) / STACK_FILE
    obj = load_weights_only(p)
    # the per-gene inputs stored with the network (the first member's, for an ensemble)
    features = getattr(getattr(network.networks()[0].model, "embedding", None), "features", None)
    context = BaselineContext(network.graph, features, list(network.meta.get("feature_names") or []),
                              len(network.target_names))
    try:
        if not isinstance(obj, dict) or obj.get("format") != STACK_FORMAT:
            raise ValueError(f"not a cellgi stack (format {obj.get('format') if isinstance(obj, dict) else None!r})")
        stack = Stack.from_state_dict(obj, context)
        if tuple(stack.weights.shape) != (len(network.target_names), len(stack.members)):
            raise ValueError(f"weights of shape {tuple(stack.weights.shape)} for {len(network.target_names)} targets")
    except (KeyError, TypeError, ValueError, AttributeError, ComponentError) as exc:
        raise CheckpointError(p, f"unusable stack: {exc}") from None
    return LoadedStack(path=Path(folder), network=network, stack=stack)
