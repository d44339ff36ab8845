"""One loader for every trained predictor: :func:`load_predictor` dispatches a path through the
registered kinds (registry role ``predictor_kind``).

Example::

    from cellgi.predictors import load_predictor

    loaded = load_predictor("runs/my-run/2026-01-01T00-00-00")   # or a .ckpt, a series, "emap_real"
    loaded.kind, loaded.describe()                               # 'network', 'one network model'
    pred = loaded.scorer().score([[0, 1], [2, 3]])               # [2, T], original units
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cellgi.registry import get_registry
from cellgi.runfolder.pretrained import resolve_model_path

if TYPE_CHECKING:  # pragma: no cover - types only
    import torch

    from cellgi.predictors.base import PredictorKind, TrainedPredictor

__all__ = ["load_predictor", "predictor_kinds"]


def predictor_kinds(*, exclude: frozenset[str] = frozenset()) -> list[tuple[str, PredictorKind]]:
    """``(name, kind)`` of every usable registered kind (plugins' included), in the order they are asked:
    decreasing ``precedence``, then name."""
    reg = get_registry("predictor_kind")
    entries = [e for e in reg.load_all() if e.factory is not None and e.name not in exclude]
    kinds = [(e.name, e.build()) for e in entries]
    return sorted(kinds, key=lambda nk: (-int(nk[1].precedence), nk[0]))


def load_predictor(
    path: str | Path, *, map_location: str | torch.device = "cpu", prefer: str = "best", stack: bool = True
) -> TrainedPredictor:
    """The trained predictor at ``path``: a checkpoint file or run folder (one network), a seed series'
    parent (the seed ensemble), a stacked folder (the blend; ``stack=False``: what the folder loads as
    without its stack), a plugin kind's folder, or a pretrained name (``cellgi pretrained build NAME``).

    Args:
        map_location: where the weights are loaded.
        prefer: ``best`` (``model.pt``, then ``checkpoints/best.ckpt``) or ``last`` (``checkpoints/last.ckpt``
            first).
        stack: False leaves a stacked folder's stack out (the network or the ensemble alone).

    Raises:
        CheckpointError: nothing at ``path``, or the file is unusable (its spec no longer validates, its
            weights do not fit, a member or ``stack.pt`` is damaged), naming the file.
        cellgi.runfolder.pretrained.PretrainedNotBuiltError: a pretrained name not built yet (naming the
            command that builds it).
    """
    # imported here: the registry imports this package (through cellgi.predictors.kinds) on its first use,
    # spec validation included, and the checkpoint module imports torch and Lightning (startup time)
    from cellgi.runfolder.checkpoint import CheckpointError

    p = resolve_model_path(path)
    for _name, kind in predictor_kinds(exclude=frozenset() if stack else frozenset({"stack"})):
        if kind.recognises(p):
            try:
                return kind.load(p, map_location=map_location, prefer=prefer)
            except CheckpointError as exc:
                broken = _broken_kinds()
                if not broken:
                    raise
                raise CheckpointError(exc.path, f"{exc.message} (installed predictor kinds that could not be "
                                      f"loaded, one of which may own this folder: {broken})") from None
    raise CheckpointError(p, "no such file or run folder")


def _broken_kinds() -> str:
    """``name (status)`` of every registered kind that could not be loaded (a broken plugin), joined."""
    return "; ".join(f"{e.name} ({e.status})" for e in get_registry("predictor_kind").load_all() if e.factory is None)
