"""cellgi's own kinds of trained predictor (registry role ``predictor_kind``): a stacked folder, a seed
series' parent, one network.

Each kind says how it recognises a path (:mod:`cellgi.runfolder.layout`) and loads it;
:func:`cellgi.predictors.load_predictor` asks the kinds in decreasing ``precedence`` (a plugin's kind
declares its own, see docs/architecture.md, "Adding a new kind of trained predictor"). The registry
imports every built-in member when it is first used (spec validation included), so this module imports
no torch: each ``load`` imports its kind's module when called (startup time).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from cellgi.predictors.loader import load_predictor
from cellgi.registry import register
from cellgi.runfolder.layout import is_series_folder, is_stacked_folder

if TYPE_CHECKING:  # pragma: no cover - types only
    import torch

    from cellgi.predictors.ensemble import LoadedEnsemble
    from cellgi.predictors.network import LoadedModel
    from cellgi.predictors.stack import LoadedStack

__all__ = ["EnsembleKind", "NetworkKind", "StackKind"]


@register("predictor_kind", "stack", summary="a run or series folder blended with its fitted baselines (stack.pt)")
class StackKind:
    """A folder with ``stack.pt``: the predictor the folder loads as without its stack, blended with the
    fitted baselines (:class:`~cellgi.predictors.stack.LoadedStack`)."""

    precedence: ClassVar[int] = 30

    def recognises(self, path: Path) -> bool:
        return is_stacked_folder(path)

    def load(self, path: Path, *, map_location: str | torch.device = "cpu", prefer: str = "best") -> LoadedStack:
        from cellgi.predictors.stack import load_stack  # startup time (module docstring)

        return load_stack(path, load_predictor(path, map_location=map_location, prefer=prefer, stack=False))


@register("predictor_kind", "ensemble", summary="a seed series' parent folder (replicates.json): members averaged")
class EnsembleKind:
    """A folder with ``replicates.json`` (``cellgi train --seeds``): its member runs, predictions averaged
    (:class:`~cellgi.predictors.ensemble.LoadedEnsemble`)."""

    precedence: ClassVar[int] = 20

    def recognises(self, path: Path) -> bool:
        return is_series_folder(path)

    def load(self, path: Path, *, map_location: str | torch.device = "cpu", prefer: str = "best") -> LoadedEnsemble:
        from cellgi.predictors.ensemble import load_ensemble  # startup time (module docstring)

        return load_ensemble(path, map_location=map_location, prefer=prefer)


@register("predictor_kind", "network", summary="one network: a checkpoint file, or a run folder's model.pt/ckpt")
class NetworkKind:
    """A checkpoint file, or a folder no other kind recognised: one network model
    (:class:`~cellgi.predictors.network.LoadedModel`; a folder without a checkpoint is an error naming
    the files looked for)."""

    precedence: ClassVar[int] = 0

    def recognises(self, path: Path) -> bool:
        return path.is_file() or path.is_dir()

    def load(self, path: Path, *, map_location: str | torch.device = "cpu", prefer: str = "best") -> LoadedModel:
        from cellgi.predictors.network import load_network  # startup time (module docstring)

        return load_network(path, map_location=map_location, prefer=prefer)
