"""Seed ensembles: the runs of ``cellgi train SPEC --seeds 0,1,2`` used together, predictions averaged.

A replicates folder (``replicates.json`` and one run folder per seed, written by
:func:`cellgi.experiments.series.train_series` with seeds) loads as one model wherever a run folder is accepted:
``cellgi predict``, ``cellgi evaluate``, :func:`cellgi.load`. Each member predicts in original units
and the predictions are averaged (likewise the local and global parts and the gate weights); members must
share genes, targets and target normalisation, which replicates of one spec do (the spec's split and data
are the same, only the model seed changes).

Why: the message-passing part of a model varies from seed to seed more than the rest; on the real E-MAP
with genes held out, averaging three seeds raised every split's Pearson by 0.02-0.03
(docs/benchmarks.md). ``train_series`` reports the ensemble's metrics beside the per-seed mean.

An ensemble *has* its members (:class:`~cellgi.predictors.network.LoadedModel`s): ``cellgi predict``,
``evaluate`` and ``screen`` run each member's fast scorer and average the same way
(:meth:`LoadedEnsemble.scorer`); ``cellgi embed``, which needs one model's internals, refuses an ensemble
(and a stacked folder, :mod:`cellgi.predictors.stack`) and names a member to use instead
(:meth:`LoadedEnsemble.one_network`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Sequence

import torch
from torch import Tensor, nn

from cellgi.data.batch import PerturbationBatch
from cellgi.data.cellgraph import CellGraph
from cellgi.data.genes import GeneMapper
from cellgi.data.normalize import TargetNormalizer
from cellgi.errors import CellgiError
from cellgi.predictors.network import LoadedModel, load_network
from cellgi.predictors.scoring import EnsembleScorer, Scorer
from cellgi.provenance import text_digest
from cellgi.runfolder.checkpoint import CheckpointError
from cellgi.runfolder.layout import is_series_folder
from cellgi.runfolder.runs import REPLICATES_FILE
from cellgi.spec import Spec

__all__ = ["EnsembleError", "EnsembleModule", "LoadedEnsemble", "load_ensemble"]

#: representation entries averaged over the members (others are per-model internals: left out)
AVERAGED_REPS = ("local_interaction", "global_interaction", "gate_weights", "additive")


class EnsembleError(CellgiError):
    """Members that cannot be averaged, or an ensemble where one model is needed."""

    exit_code = 2


class EnsembleModule(nn.Module):
    """The members' modules in one ``nn.Module`` (for ``.to(device)``, ``.eval()``, ``parameters()``);
    ``forward(batch)`` averages the members' normalised predictions."""

    def __init__(self, members: Sequence[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.num_targets = getattr(members[0], "num_targets", None)

    def forward(self, batch: PerturbationBatch) -> tuple[Tensor, dict[str, Any]]:
        preds, reps = zip(*(m(batch) for m in self.members))
        return torch.stack(preds).mean(0), _mean_reps(reps)


def _mean_reps(reps: Sequence[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = dict.fromkeys(reps[0])
    for key in AVERAGED_REPS:
        values = [r.get(key) for r in reps]
        if all(v is not None for v in values):
            out[key] = torch.stack([v.float() for v in values]).mean(0)
    return out


@dataclass
class LoadedEnsemble:
    """A seed ensemble: its member networks, predictions averaged (a
    :class:`~cellgi.predictors.base.TrainedPredictor` of kind ``ensemble``).

    ``spec``, ``graph``, ``mapper``, ``normalizer`` and ``meta`` are the first member's (all members share
    genes, targets and normalisation; checked by :func:`load_ensemble`); ``model`` is the members' modules
    in one :class:`EnsembleModule`."""

    kind: ClassVar[str] = "ensemble"

    path: Path
    members: list[LoadedModel]
    model: EnsembleModule = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.model = EnsembleModule([m.model for m in self.members])

    @property
    def spec(self) -> Spec:
        return self.members[0].spec

    @property
    def target_names(self) -> list[str]:
        return list(self.members[0].target_names)

    @property
    def graph(self) -> CellGraph:
        return self.members[0].graph

    @property
    def mapper(self) -> GeneMapper:
        return self.members[0].mapper

    @property
    def normalizer(self) -> TargetNormalizer:
        return self.members[0].normalizer

    @property
    def meta(self) -> dict[str, Any]:
        return self.members[0].meta

    @torch.no_grad()
    def predict(self, batch: PerturbationBatch) -> tuple[Tensor, dict[str, Any]]:
        outs = [m.predict(batch) for m in self.members]  # each in original units
        return torch.stack([p for p, _ in outs]).mean(0), _mean_reps([r for _, r in outs])

    def scorer(self, batch_size: int | None = None) -> Scorer:
        """Each member's scorer, outputs averaged (:class:`~cellgi.predictors.scoring.EnsembleScorer`)."""
        return EnsembleScorer([m.scorer(batch_size) for m in self.members])

    def default_batch_size(self) -> int:
        return min(m.default_batch_size() for m in self.members)

    def networks(self) -> list[LoadedModel]:
        return list(self.members)

    def one_network(self, command: str) -> LoadedModel:
        raise EnsembleError(
            f"{command} needs one model, and {self.path} is a seed ensemble of {len(self.members)} runs; "
            f"give one member instead, e.g. {self.members[0].path}"
        )

    def to(self, device: torch.device | str) -> LoadedEnsemble:
        self.model.to(device)  # holds every member's module
        return self

    def digest(self) -> str:
        """The members' digests, in order (``sha256:<hex>``)."""
        return text_digest("ensemble|" + "|".join(m.digest() for m in self.members))

    def describe(self) -> str:
        return f"seed ensemble of {len(self.members)} runs"


def _member_paths(folder: Path) -> list[Path]:
    try:
        info = json.loads((folder / REPLICATES_FILE).read_text())
        runs = info["runs"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(folder / REPLICATES_FILE, f"unreadable replicates file: {exc}") from None
    if not isinstance(runs, dict) or not runs:
        raise CheckpointError(folder / REPLICATES_FILE, "lists no member runs")
    return [folder / str(sub) for sub in runs.values()]


def load_ensemble(
    paths: str | Path | Sequence[str | Path], *, map_location: str | torch.device = "cpu", prefer: str = "best"
) -> LoadedEnsemble:
    """An ensemble from a seed series' parent folder or from several run folders / checkpoints.

    Raises:
        CheckpointError: a member is unusable (its own message, naming it).
        EnsembleError: the members differ in genes, targets or target normalisation.
    """
    if isinstance(paths, (str, Path)):
        folder = Path(paths)
        if not is_series_folder(folder):
            raise CheckpointError(folder, f"not a replicates folder (no {REPLICATES_FILE})")
        member_paths, where = _member_paths(folder), folder
    else:
        member_paths = [Path(p) for p in paths]
        where = member_paths[0] if member_paths else Path(".")
    if not member_paths:
        raise EnsembleError("an ensemble needs at least one member")
    # members are networks: a member folder's own stack (training.stack) is not part of the average
    members = [load_network(p, map_location=map_location, prefer=prefer) for p in member_paths]
    first = members[0]
    for m in members[1:]:
        problems = []
        if list(m.mapper.genes) != list(first.mapper.genes):
            problems.append("gene lists differ")
        if list(m.target_names) != list(first.target_names):
            problems.append(f"targets differ ({m.target_names} vs {first.target_names})")
        a, b = m.normalizer.state_dict(), first.normalizer.state_dict()
        if json.dumps(a, sort_keys=True, default=str) != json.dumps(b, sort_keys=True, default=str):
            problems.append("target normalisation differs (trained on different splits?)")
        if problems:
            raise EnsembleError(f"{m.path} cannot be averaged with {first.path}: {'; '.join(problems)}")
    return LoadedEnsemble(path=where, members=members)
