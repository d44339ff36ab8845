"""Scoring many gene sets with a trained predictor: the scorers and the default batch sizes.

``cellgi predict``, ``cellgi evaluate``, ``cellgi screen``, the stack's fit, the seed ensemble's metrics
and ``cellgi bench`` score gene sets through a :class:`Scorer`, which every trained predictor gives
(:meth:`TrainedPredictor.scorer <cellgi.predictors.base.TrainedPredictor.scorer>`), cut into batches by the
one batch iterator, :func:`~cellgi.data.batch.iter_batches`:

- ``score(sets)``: predictions ``[S, T]`` (original units);
- ``score_padded(padded, mask)``: the same plus the local and global parts, the gate weights and, for a
  stack, its members alone.

Batch sizes: :func:`network_batch_size` is what every command uses unless told otherwise
(:data:`WILDTYPE_BATCH_SIZE` sets for a network that reads only the wildtype cell,
:data:`MESSAGE_PASSING_BATCH_SIZE` for the others, whose batches run message passing); a predictor's
:meth:`~cellgi.predictors.base.TrainedPredictor.default_batch_size` is its networks' smallest.

Speed, exactly: a :class:`ModelScorer` computes the model's wildtype cell once
(:meth:`~cellgi.nn.model.LazyDango.wildtype_states`) and then scores each batch with
:meth:`~cellgi.nn.model.LazyDango.predict_with_wildtype`. For a model without a global part (``local_only``
combiners) a batch is then a gather of each set's wildtype gene states, their pair relations (table
look-ups, :class:`~cellgi.nn.relations.PairRelations`) and the heads' small MLPs, all vectorised over
thousands of sets; no message passing at all. The operations are those of ``model(batch)``, so the
predictions equal the per-batch forward to float rounding (tests/predictors/test_scoring.py: within 1e-5).

Example::

    from cellgi.predictors import load_predictor

    scorer = load_predictor("runs/my-run/2026-01-01T00-00-00").scorer()
    pred = scorer.score([[0, 1], [2, 3]])  # [2, T], original units
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Sequence

import torch
from torch import Tensor, nn

from cellgi.data.batch import PerturbationBatch, collate_flat, iter_batches, pad_sets
from cellgi.data.genes import GeneMapper
from cellgi.data.normalize import TargetNormalizer
from cellgi.errors import CellgiError

if TYPE_CHECKING:  # pragma: no cover - types only: stack.py imports this module (a cycle otherwise)
    from cellgi.predictors.base import TrainedPredictor
    from cellgi.predictors.stack import Stack

__all__ = [
    "MESSAGE_PASSING_BATCH_SIZE",
    "WILDTYPE_BATCH_SIZE",
    "EnsembleScorer",
    "ModelScorer",
    "PredictScorer",
    "Scorer",
    "ScoringError",
    "StackScorer",
    "batch_of_sets",
    "gene_labels",
    "network_batch_size",
]

#: sets per batch of a model that reads only the wildtype cell (gathers and small MLPs: big batches)
WILDTYPE_BATCH_SIZE = 16384
#: sets per batch of a model whose batches run message passing (``[N, B+1, H]`` per layer)
MESSAGE_PASSING_BATCH_SIZE = 256


class ScoringError(CellgiError):
    """The model predicted NaN/inf for a gene set (names how many)."""

    exit_code = 2


def gene_labels(mapper: GeneMapper) -> list[str]:
    """The standard name of every gene of ``mapper``'s list, by index (``RAD52`` for ``YML032C``; SGD
    ``SGD_features.tab`` column 5, kept in the checkpoint's mapper), the gene's own name where it has none."""
    labels = list(mapper.genes)
    index = {g: i for i, g in enumerate(labels)}
    for name, orf in sorted(getattr(mapper, "names", {}).items()):
        gene = mapper.map(orf) if orf not in index else orf
        if gene is not None and gene in index and labels[index[gene]] == gene:
            labels[index[gene]] = name
    return labels


def batch_of_sets(padded: Tensor, mask: Tensor, num_targets: int) -> PerturbationBatch:
    """A :class:`~cellgi.data.batch.PerturbationBatch` of padded sets (vectorised; targets NaN)."""
    sizes = mask.sum(1)
    ptr = torch.zeros(padded.shape[0] + 1, dtype=torch.long)
    ptr[1:] = torch.cumsum(sizes, 0)
    return collate_flat(padded[mask], ptr, torch.full((padded.shape[0], num_targets), float("nan")))


def network_batch_size(model: nn.Module) -> int:
    """The batch size the commands use for one network (see the module docs): its declared
    ``reads_wildtype_only`` picks :data:`WILDTYPE_BATCH_SIZE`, else :data:`MESSAGE_PASSING_BATCH_SIZE`."""
    return WILDTYPE_BATCH_SIZE if getattr(model, "reads_wildtype_only", False) else MESSAGE_PASSING_BATCH_SIZE


class Scorer(ABC):
    """Scores padded gene sets (:meth:`score_padded`) and any number of sets in batches (:meth:`score`).

    Attributes:
        batch_size: sets per batch of :meth:`score` (and the commands' default for this predictor).
        num_targets: ``T``.
    """

    batch_size: int = WILDTYPE_BATCH_SIZE
    num_targets: int = 1

    @abstractmethod
    def score_padded(self, padded: Tensor, mask: Tensor) -> dict[str, Any]:
        """``{"pred", "local", "global", "gate"}`` of one batch (``[S, T]``/``[S, 2]`` float32 CPU tensors or
        None; the first three in original units), plus ``"members"`` for a stack."""

    def score(self, sets: Sequence[Sequence[int]] | Tensor, mask: Tensor | None = None) -> Tensor:
        """Predictions ``[S, T]`` (float32, CPU, original units) of index sets, in batches of
        :attr:`batch_size`."""
        padded, m = pad_sets(sets) if mask is None else (sets, mask)  # type: ignore[assignment]
        outs = [self.score_padded(p, mk)["pred"] for p, mk in zip(iter_batches(padded, self.batch_size),
                                                                   iter_batches(m, self.batch_size))]
        if not outs:
            return torch.zeros(0, self.num_targets)
        return torch.cat(outs)


class ModelScorer(Scorer):
    """One network model: the wildtype cell once, then :meth:`LazyDango.predict_with_wildtype` per batch.

    Args:
        model: a :class:`~cellgi.nn.model.LazyDango` (put in evaluation mode here).
        normalizer: maps predictions back to original units (None: model units).
        batch_size: sets per forward (default :func:`network_batch_size`).
    """

    def __init__(self, model: nn.Module, normalizer: TargetNormalizer | None = None, *, batch_size: int | None = None):
        self.model, self.normalizer = model.eval(), normalizer
        self.num_targets = int(model.num_targets)
        self.device = next(model.parameters()).device
        self.batch_size = batch_size or network_batch_size(model)
        with torch.inference_mode():
            self.wildtype = model.wildtype_states()
            if getattr(model, "relations", None) is not None and model.relations.uses_shared_tables:
                model.relations.shared_tables()  # built here, once, not inside the first batch

    def score_padded(self, padded: Tensor, mask: Tensor) -> dict[str, Any]:
        batch = batch_of_sets(padded, mask, self.num_targets).to(self.device)
        with torch.inference_mode():
            pred, reps = self.model.predict_with_wildtype(batch, self.wildtype)
            pred = pred.float()
            if not bool(torch.isfinite(pred).all()):
                bad = int((~torch.isfinite(pred)).any(1).sum())
                raise ScoringError(f"the model predicted NaN/inf for {bad} gene set(s) of this batch")
            out = {"pred": pred, "local": reps.get("local_interaction"), "global": reps.get("global_interaction"),
                   "gate": reps.get("gate_weights")}
            for key in ("pred", "local", "global"):
                if out[key] is not None and self.normalizer is not None:
                    out[key] = self.normalizer.inverse(out[key].float())
            return {k: None if v is None else v.float().cpu() for k, v in out.items()}


class EnsembleScorer(Scorer):
    """A seed ensemble: each member's scorer, outputs (original units) averaged, as
    :class:`cellgi.predictors.ensemble.LoadedEnsemble` predicts."""

    def __init__(self, scorers: Sequence[Scorer]):
        self.scorers = list(scorers)
        self.num_targets = self.scorers[0].num_targets
        self.batch_size = min(s.batch_size for s in self.scorers)

    def score_padded(self, padded: Tensor, mask: Tensor) -> dict[str, Any]:
        outs = [s.score_padded(padded, mask) for s in self.scorers]
        res: dict[str, Any] = {}
        for key in ("pred", "local", "global", "gate"):
            vals = [o[key] for o in outs]
            res[key] = torch.stack(vals).mean(0) if all(v is not None for v in vals) else None
        return res


class StackScorer(Scorer):
    """A stacked folder (``training.stack``): the network's scorer blended with the stored baselines, as
    :class:`cellgi.predictors.stack.LoadedStack` predicts; ``members`` holds each member alone (original units).

    Args:
        network: the scorer of the stack's network predictor (one model or a seed ensemble).
        stack: the fitted :class:`~cellgi.predictors.stack.Stack`.
        normalizer: the network's target normaliser (the blend runs in normalised units).
    """

    def __init__(self, network: Scorer, stack: Stack, normalizer: TargetNormalizer):
        self.network, self.stack, self.normalizer = network, stack, normalizer
        self.num_targets = network.num_targets
        self.batch_size = network.batch_size

    def score_padded(self, padded: Tensor, mask: Tensor) -> dict[str, Any]:
        out = dict(self.network.score_padded(padded, mask))
        st, norm = self.stack, self.normalizer
        others = st.baseline_predictions_padded(padded, mask)
        net = out["pred"]
        out["members"] = {"network": net, **{name: norm.inverse(o).float()
                                              for name, o in zip(st.members[1:], others)}}
        out["pred"] = norm.inverse(st.combine(norm.transform(net), others)).float()
        return out


class PredictScorer(Scorer):
    """Scores through ``loaded.predict(batch)`` (``(pred [S, T] original units, representations)``), batch
    by batch, without the wildtype shortcut: the scorer a plugin's kind of predictor can return from its
    ``scorer()`` when it has no faster one."""

    def __init__(self, loaded: TrainedPredictor, *, batch_size: int | None = None):
        self.loaded = loaded
        self.num_targets = len(loaded.target_names)
        self.batch_size = int(batch_size or MESSAGE_PASSING_BATCH_SIZE)

    def score_padded(self, padded: Tensor, mask: Tensor) -> dict[str, Any]:
        with torch.inference_mode():
            pred, reps = self.loaded.predict(batch_of_sets(padded, mask, self.num_targets))
        out: dict[str, Any] = {"pred": pred.float().cpu(), "local": None, "global": None, "gate": None}
        if reps.get("stack_members"):
            out["members"] = {k: v.float().cpu() for k, v in reps["stack_members"].items()}
        return out
