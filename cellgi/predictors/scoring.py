"""Scoring many gene sets with a loaded run: the one batch iterator and the fast scorers.

``cellgi predict``, ``cellgi evaluate``, ``cellgi screen``, the stack's fit, the seed ensemble's metrics
and ``cellgi bench`` score gene sets through this module:

- :func:`~cellgi.data.batch.iter_batches` cuts a sequence (a list, a tensor of padded sets) or a stream of gene sets into
  consecutive batches; :func:`default_batch_size` is the batch size every command uses unless told
  otherwise (:data:`WILDTYPE_BATCH_SIZE` sets for models that read only the wildtype cell,
  :data:`MESSAGE_PASSING_BATCH_SIZE` for the others, whose batches run message passing).
- :func:`scorer_for` gives the scorer of a loaded run (one model, a seed ensemble, a stacked folder):
  ``score(sets)`` (predictions ``[S, T]``, original units) and ``score_padded(padded, mask)`` (the same
  plus the local and global parts, the gate weights and a stack's members).

Speed, exactly: a :class:`ModelScorer` computes the model's wildtype cell once
(:meth:`~cellgi.nn.model.LazyDango.wildtype_states`) and then scores each batch with
:meth:`~cellgi.nn.model.LazyDango.predict_with_wildtype`. For a model without a global part (``local_only``
combiners) a batch is then a gather of each set's wildtype gene states, their pair relations (table
look-ups, :class:`~cellgi.nn.relations.PairRelations`) and the heads' small MLPs, all vectorised over
thousands of sets; no message passing at all. The operations are those of ``model(batch)``, so the
predictions equal the per-batch forward to float rounding (tests/predictors/test_scoring.py: within 1e-5).

Example::

    from cellgi.predictors.scoring import scorer_for
    from cellgi.training.checkpoint import load_model

    scorer = scorer_for(load_model("runs/my-run/2026-01-01T00-00-00"))
    pred = scorer.score([[0, 1], [2, 3]])  # [2, T], original units
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor

from cellgi.data.batch import iter_batches, pad_sets
from cellgi.errors import CellgiError

__all__ = [
    "MESSAGE_PASSING_BATCH_SIZE",
    "WILDTYPE_BATCH_SIZE",
    "EnsembleScorer",
    "ModelScorer",
    "PredictScorer",
    "ScoringError",
    "StackScorer",
    "default_batch_size",
    "gene_labels",
    "scorer_for",
]

#: sets per batch of a model that reads only the wildtype cell (gathers and small MLPs: big batches)
WILDTYPE_BATCH_SIZE = 16384
#: sets per batch of a model whose batches run message passing (``[N, B+1, H]`` per layer)
MESSAGE_PASSING_BATCH_SIZE = 256

class ScoringError(CellgiError):
    """The model predicted NaN/inf for a gene set (names how many)."""

    exit_code = 2


def gene_labels(mapper: Any) -> list[str]:
    """The standard name of every gene of ``mapper``'s list, by index (``RAD52`` for ``YML032C``; SGD
    ``SGD_features.tab`` column 5, kept in the checkpoint's mapper), the gene's own name where it has none."""
    labels = list(mapper.genes)
    index = {g: i for i, g in enumerate(labels)}
    for name, orf in sorted(getattr(mapper, "names", {}).items()):
        gene = mapper.map(orf) if orf not in index else orf
        if gene is not None and gene in index and labels[index[gene]] == gene:
            labels[index[gene]] = name
    return labels


def _batch_of(padded: Tensor, mask: Tensor, num_targets: int) -> Any:
    """A :class:`~cellgi.data.batch.PerturbationBatch` of padded sets (vectorised; targets NaN)."""
    from cellgi.data.batch import collate_flat

    sizes = mask.sum(1)
    ptr = torch.zeros(padded.shape[0] + 1, dtype=torch.long)
    ptr[1:] = torch.cumsum(sizes, 0)
    return collate_flat(padded[mask], ptr, torch.full((padded.shape[0], num_targets), float("nan")))


def default_batch_size(loaded: Any) -> int:
    """The batch size the commands use for ``loaded`` (see the module docs)."""
    models = _networks(loaded)
    if all(getattr(m, "reads_wildtype_only", False) for m in models):
        return WILDTYPE_BATCH_SIZE
    return MESSAGE_PASSING_BATCH_SIZE


def _kind(loaded: Any) -> str:
    """What ``loaded`` declares it is (``predictor_kind``: ``network``, ``ensemble``, ``stack``; anything
    else is scored through its ``predict``). Declared, so that this module needs no import of the kinds."""
    return str(getattr(loaded, "predictor_kind", "network"))


def _networks(loaded: Any) -> list[Any]:
    if _kind(loaded) == "stack":
        return _networks(loaded.network)
    if _kind(loaded) == "ensemble":
        return [m.model for m in loaded.members]
    return [getattr(loaded, "model", None)]


class _Scorer:
    """Shared driver: ``score_padded`` on one batch, ``score`` over any number of sets."""

    batch_size: int = WILDTYPE_BATCH_SIZE

    def score_padded(self, padded: Tensor, mask: Tensor) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def score(self, sets: Sequence[Sequence[int]] | Tensor, mask: Tensor | None = None) -> Tensor:
        """Predictions ``[S, T]`` (float32, CPU, original units) of index sets, in batches of
        :attr:`batch_size`."""
        padded, m = pad_sets(sets) if mask is None else (sets, mask)  # type: ignore[assignment]
        outs = [self.score_padded(p, mk)["pred"] for p, mk in zip(iter_batches(padded, self.batch_size),
                                                                   iter_batches(m, self.batch_size))]
        if not outs:
            return torch.zeros(0, self.num_targets)
        return torch.cat(outs)

    num_targets: int = 1


class ModelScorer(_Scorer):
    """One network model: the wildtype cell once, then :meth:`LazyDango.predict_with_wildtype` per batch.

    Args:
        model: a :class:`~cellgi.nn.model.LazyDango` (put in evaluation mode here).
        normalizer: maps predictions back to original units (None: model units).
        batch_size: sets per forward (default :func:`default_batch_size`'s choice for this model).
    """

    def __init__(self, model: Any, normalizer: Any = None, *, batch_size: int | None = None):
        self.model, self.normalizer = model.eval(), normalizer
        self.num_targets = int(model.num_targets)
        self.device = next(model.parameters()).device
        self.batch_size = batch_size or (WILDTYPE_BATCH_SIZE if getattr(model, "reads_wildtype_only", False)
                                         else MESSAGE_PASSING_BATCH_SIZE)
        with torch.inference_mode():
            self.wildtype = model.wildtype_states()
            if getattr(model, "relations", None) is not None and model.relations.uses_shared_tables:
                model.relations.shared_tables()  # built here, once, not inside the first batch

    def score_padded(self, padded: Tensor, mask: Tensor) -> dict[str, Any]:
        """``{"pred", "local", "global", "gate"}`` of one batch (``[S, T]``/``[S, 2]`` float32 CPU tensors
        or None; the first three in original units)."""
        batch = _batch_of(padded, mask, self.num_targets).to(self.device)
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


class EnsembleScorer(_Scorer):
    """A seed ensemble: each member's :class:`ModelScorer`, outputs (original units) averaged, as
    :class:`cellgi.predictors.ensemble.LoadedEnsemble` predicts."""

    def __init__(self, scorers: Sequence[ModelScorer]):
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


class StackScorer(_Scorer):
    """A stacked folder (``training.stack``): the network's scorer blended with the stored baselines, as
    :class:`cellgi.predictors.stack.LoadedStack` predicts; ``members`` holds each member alone (original units)."""

    def __init__(self, network: _Scorer, loaded: Any):
        self.network, self.loaded = network, loaded
        self.num_targets = network.num_targets
        self.batch_size = network.batch_size

    def score_padded(self, padded: Tensor, mask: Tensor) -> dict[str, Any]:
        out = dict(self.network.score_padded(padded, mask))
        st, norm = self.loaded.stack, self.loaded.normalizer
        others = st.baseline_predictions_padded(padded, mask)
        net = out["pred"]
        out["members"] = {"network": net, **{name: norm.inverse(o).float()
                                              for name, o in zip(st.members[1:], others)}}
        out["pred"] = norm.inverse(st.combine(norm.transform(net), others)).float()
        return out


class PredictScorer(_Scorer):
    """Scores through ``loaded.predict(batch)`` (``(pred [S, T] original units, representations)``): any
    trained predictor that is not one of cellgi's own kinds (a plugin's, a test's stand-in) scores the same
    way, batch by batch, without the wildtype shortcut."""

    def __init__(self, loaded: Any, *, batch_size: int | None = None):
        self.loaded = loaded
        self.num_targets = len(loaded.target_names)
        self.batch_size = int(batch_size or MESSAGE_PASSING_BATCH_SIZE)

    def score_padded(self, padded: Tensor, mask: Tensor) -> dict[str, Any]:
        with torch.inference_mode():
            pred, reps = self.loaded.predict(_batch_of(padded, mask, self.num_targets))
        out: dict[str, Any] = {"pred": pred.float().cpu(), "local": None, "global": None, "gate": None}
        if reps.get("stack_members"):
            out["members"] = {k: v.float().cpu() for k, v in reps["stack_members"].items()}
        return out


def scorer_for(loaded: Any, *, batch_size: int | None = None) -> _Scorer:
    """The fastest exact scorer of what ``loaded`` predicts: one model (:class:`ModelScorer`), a seed
    ensemble (:class:`EnsembleScorer`) or a stacked folder (:class:`StackScorer`). Its ``score(sets)``
    equals ``loaded.predict`` on the same sets up to float rounding."""
    if _kind(loaded) == "stack":
        return StackScorer(scorer_for(loaded.network, batch_size=batch_size), loaded)
    if _kind(loaded) == "ensemble":
        return EnsembleScorer([ModelScorer(m.model, m.normalizer, batch_size=batch_size) for m in loaded.members])
    if not hasattr(getattr(loaded, "model", None), "predict_with_wildtype"):
        return PredictScorer(loaded, batch_size=batch_size)
    return ModelScorer(loaded.model, getattr(loaded, "normalizer", None), batch_size=batch_size)
