"""One trained network: a model rebuilt from a checkpoint file alone (:class:`LoadedModel`).

A checkpoint (:mod:`cellgi.runfolder.checkpoint`) holds the validated spec, the gene list and mapper, the
graph and the target normaliser beside the weights, so :func:`load_network` rebuilds the
:class:`~cellgi.nn.model.LazyDango` without the training data and checks that the weights fit it.

Example::

    from cellgi.predictors.network import load_network

    net = load_network("runs/my-run/2026-01-01T00-00-00")   # model.pt, else checkpoints/best.ckpt
    pred, reps = net.predict(batch)                           # original units
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from cellgi.data.batch import PerturbationBatch
from cellgi.data.cellgraph import CellGraph
from cellgi.data.genes import GeneMapper
from cellgi.data.normalize import TargetNormalizer
from cellgi.nn.model import LazyDango
from cellgi.predictors.scoring import ModelScorer, PredictScorer, Scorer, network_batch_size
from cellgi.runfolder.checkpoint import (
    CHECKPOINT_KEY,
    CheckpointError,
    model_state_of,
    read_checkpoint,
    resolve_checkpoint,
)
from cellgi.spec import Spec, SpecError, validate_spec

__all__ = ["LoadedModel", "load_network"]


@dataclass
class LoadedModel:
    """A network model rebuilt from a checkpoint, with what it needs to map genes and report in original
    units (a :class:`~cellgi.predictors.base.TrainedPredictor` of kind ``network``)."""

    kind: ClassVar[str] = "network"

    path: Path
    model: LazyDango
    spec: Spec
    target_names: list[str]
    graph: CellGraph
    mapper: GeneMapper
    normalizer: TargetNormalizer
    meta: dict[str, Any] = field(repr=False)

    @torch.no_grad()
    def predict(self, batch: PerturbationBatch) -> tuple[Tensor, dict[str, Any]]:
        """``(pred [B, T] in original units, reps)``; ``reps`` as :meth:`LazyDango.forward` returns them
        (``local_interaction``/``global_interaction`` also in original units)."""
        self.model.eval()
        device = next(self.model.parameters()).device
        pred, reps = self.model(batch.to(device))
        reps = dict(reps)
        for key in ("local_interaction", "global_interaction"):
            if reps.get(key) is not None:
                reps[key] = self.normalizer.inverse(reps[key].float())
        return self.normalizer.inverse(pred.float()), reps

    def scorer(self, batch_size: int | None = None) -> Scorer:
        """:class:`~cellgi.predictors.scoring.ModelScorer` (the wildtype cell once); a model without
        ``predict_with_wildtype`` scores through :meth:`predict`."""
        if not hasattr(self.model, "predict_with_wildtype"):
            return PredictScorer(self, batch_size=batch_size)
        return ModelScorer(self.model, self.normalizer, batch_size=batch_size)

    def default_batch_size(self) -> int:
        return network_batch_size(self.model)

    def networks(self) -> list[LoadedModel]:
        return [self]

    def one_network(self, command: str) -> LoadedModel:
        return self

    def to(self, device: torch.device | str) -> LoadedModel:
        self.model.to(device)
        return self

    def digest(self) -> str:
        """The checkpoint's own SHA-256 digest of weights and metadata (``sha256:<hex>``); for weights
        without one, a digest of the state dict."""
        stored = (self.meta or {}).get("digest")
        if stored:
            return f"sha256:{stored}"
        h = hashlib.sha256()
        for k, v in sorted(self.model.state_dict().items()):
            h.update(k.encode())
            h.update(v.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        return "sha256:" + h.hexdigest()

    def describe(self) -> str:
        return "one network model"


def load_network(path: str | Path, *, map_location: str | torch.device = "cpu", prefer: str = "best") -> LoadedModel:
    """Rebuild the network of a checkpoint file or run folder (``model.pt``, else ``checkpoints/best.ckpt``;
    ``prefer="last"`` starts with ``checkpoints/last.ckpt``) from the file alone.

    Raises:
        CheckpointError: the file is unusable, or its spec no longer validates (e.g. a plugin it
            names is not installed), or its weights do not fit the rebuilt model.
    """
    p = resolve_checkpoint(path, prefer=prefer)
    obj = read_checkpoint(p, map_location=map_location)
    meta = obj[CHECKPOINT_KEY]
    try:
        spec = validate_spec(json.loads(meta["spec_json"]))
    except SpecError as exc:
        raise CheckpointError(p, f"its stored spec no longer validates here:\n{exc.render(snippet=False)}") from None
    except (json.JSONDecodeError, TypeError) as exc:
        raise CheckpointError(p, f"malformed stored spec: {exc}") from None
    try:
        graph = CellGraph.from_state_dict(meta["graph"])
        mapper = GeneMapper.from_dict(meta["mapper"])
        normalizer = TargetNormalizer.from_state_dict(meta["normalizer"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(p, f"malformed stored graph, mapper or normaliser: {exc}") from None
    target_names = list(meta["target_names"])
    state = model_state_of(obj)
    try:
        model = LazyDango.from_spec(
            spec.model, graph, len(target_names), node_features=state.get("embedding.features"),
            feature_names=meta.get("feature_names"),
        )
        model.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(p, f"weights do not fit the model its spec describes: {first}") from None
    model.eval()
    return LoadedModel(p, model, spec, target_names, graph, mapper, normalizer, meta)
