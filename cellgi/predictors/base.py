"""What every trained predictor is: :class:`TrainedPredictor`, and what makes a path load as one:
:class:`PredictorKind`.

A trained predictor is anything that predicts from a run folder: one network
(:class:`~cellgi.predictors.network.LoadedModel`), a seed ensemble that *has* member networks
(:class:`~cellgi.predictors.ensemble.LoadedEnsemble`), a stack that *has* a network predictor and fitted
baselines (:class:`~cellgi.predictors.stack.LoadedStack`), or a plugin's own kind. The commands
(``cellgi predict``, ``evaluate``, ``screen``, ``embed``), the notebook API and the benchmark use only this
protocol: they never ask which class they hold.

A kind (:class:`PredictorKind`, registry role ``predictor_kind``, entry-point group
``cellgi.predictor_kinds``) says how it recognises a path and loads it;
:func:`cellgi.predictors.load_predictor` asks the kinds in decreasing ``precedence``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover - types only (this module is imported by the light kinds module)
    import torch
    from torch import Tensor, nn

    from cellgi.data.batch import PerturbationBatch
    from cellgi.data.cellgraph import CellGraph
    from cellgi.data.genes import GeneMapper
    from cellgi.data.normalize import TargetNormalizer
    from cellgi.predictors.network import LoadedModel
    from cellgi.predictors.scoring import Scorer
    from cellgi.spec import Spec

__all__ = ["PredictorKind", "TrainedPredictor"]


@runtime_checkable
class TrainedPredictor(Protocol):
    """Anything that predicts gene sets from a trained run folder.

    Attributes:
        kind: the registered kind's name (``network``, ``ensemble``, ``stack``, a plugin's).
        path: what it was loaded from (a checkpoint file or a folder).
        spec: the validated spec it was trained with.
        target_names: what it predicts, in output-column order.
        graph: the gene graph it was built on.
        mapper: maps gene identifiers (ORFs, names, aliases) to its gene list.
        normalizer: the target normaliser (predictions come back in original units).
        meta: the checkpoint's ``cellgi`` metadata (``digest``, ``extra`` with ``train_set_sizes``, ...).
        model: the torch module it runs (an ensemble's averaging module; a stack's network module).
    """

    kind: ClassVar[str]
    path: Path

    @property
    def spec(self) -> Spec: ...

    @property
    def target_names(self) -> list[str]: ...

    @property
    def graph(self) -> CellGraph: ...

    @property
    def mapper(self) -> GeneMapper: ...

    @property
    def normalizer(self) -> TargetNormalizer: ...

    @property
    def meta(self) -> dict[str, Any]: ...

    @property
    def model(self) -> nn.Module: ...

    def predict(self, batch: PerturbationBatch) -> tuple[Tensor, dict[str, Any]]:
        """``(pred [B, T] in original units, representations)`` for one batch."""
        ...

    def scorer(self, batch_size: int | None = None) -> Scorer:
        """The fastest exact scorer of what :meth:`predict` predicts (``score``, ``score_padded``), in
        batches of ``batch_size`` (default :meth:`default_batch_size`)."""
        ...

    def default_batch_size(self) -> int:
        """The batch size every command uses for this predictor unless told otherwise."""
        ...

    def networks(self) -> list[LoadedModel]:
        """The network models it runs (one, an ensemble's members, a stack's network's)."""
        ...

    def one_network(self, command: str) -> LoadedModel:
        """The single network, for ``command`` that needs one model's internals (``cellgi embed``); a
        :class:`~cellgi.errors.CellgiError` naming a member to use instead when there are several."""
        ...

    def to(self, device: torch.device | str) -> TrainedPredictor:
        """Move its modules to ``device``; returns itself."""
        ...

    def digest(self) -> str:
        """``sha256:<hex>`` of what predicts (weights, metadata, a stack's file): what resumable outputs
        record (:mod:`cellgi.provenance`)."""
        ...

    def describe(self) -> str:
        """What predicts, in words (``one network model``, ``seed ensemble of 3 runs``, a stack's weights)."""
        ...


class PredictorKind(Protocol):
    """A registered kind of trained predictor (role ``predictor_kind``).

    Attributes:
        precedence: kinds are asked in decreasing precedence (built-ins: ``stack`` 30, ``ensemble`` 20,
            ``network`` 0, which takes any file or folder no other kind recognised).
    """

    precedence: ClassVar[int]

    def recognises(self, path: Path) -> bool:
        """Whether ``path`` (an existing file or folder) is this kind's; reads file names, not files."""
        ...

    def load(self, path: Path, *, map_location: str | torch.device = "cpu", prefer: str = "best") -> TrainedPredictor:
        """The predictor at ``path``; a :class:`~cellgi.runfolder.checkpoint.CheckpointError` naming the
        file when it is unusable."""
        ...
