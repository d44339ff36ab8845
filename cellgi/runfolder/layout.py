"""What a path given to a loader is: a checkpoint file, a run folder, a seed series' parent, a stacked
folder, a pretrained name, or nothing usable.

The one place that reads a folder's layout to tell these apart (the file names are
:mod:`cellgi.runfolder.runs`' constants). The kinds of trained predictor
(:mod:`cellgi.predictors.kinds`) recognise their folders with these tests, and ``cellgi`` commands that only
need to say what a path is call :func:`kind_of`::

    from cellgi.runfolder.layout import PathKind, kind_of

    kind_of("runs/quickstart/20260101-120000")   # PathKind.RUN
    kind_of("runs/emap/seeds")                   # PathKind.SERIES (replicates.json)
    kind_of("emap_real")                         # PathKind.PRETRAINED (a shipped name, built or not)

A stacked folder (``stack.pt``) is a run folder or a series parent as well; :func:`kind_of` names the
stack, which is what the folder predicts with.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

from cellgi.runfolder.pretrained import is_pretrained_name
from cellgi.runfolder.runs import CKPT_DIR, MODEL_FILE, REPLICATES_FILE, STACK_FILE

__all__ = ["CHECKPOINT_NAMES", "PathKind", "is_run_folder", "is_series_folder", "is_stacked_folder", "kind_of"]

#: the checkpoint files a run folder may hold (relative paths), in the order the loader prefers them
CHECKPOINT_NAMES = (MODEL_FILE, f"{CKPT_DIR}/best.ckpt", f"{CKPT_DIR}/last.ckpt")


class PathKind(str, Enum):
    """What :func:`kind_of` finds at a path."""

    #: a file (``model.pt``, ``*.ckpt``): the network alone
    CHECKPOINT = "checkpoint"
    #: a run folder with a checkpoint (``model.pt`` or ``checkpoints/*.ckpt``)
    RUN = "run"
    #: a seed series' parent (``replicates.json``): loads as the seed ensemble
    SERIES = "series"
    #: a run or series folder with a fitted stack (``stack.pt``): loads as the blend
    STACKED = "stacked"
    #: no such path, but a shipped spec name that resolves to a pretrained folder
    PRETRAINED = "pretrained"
    #: a folder that is none of the above (a plugin's kind may still recognise it)
    OTHER_FOLDER = "other_folder"
    #: nothing at this path, and not a pretrained name
    MISSING = "missing"


def is_stacked_folder(path: str | Path) -> bool:
    """True for a run or series folder that ``cellgi train`` stacked (it holds ``stack.pt``)."""
    p = Path(path)
    return p.is_dir() and (p / STACK_FILE).is_file()


def is_series_folder(path: str | Path) -> bool:
    """True for a seed series' parent folder (``cellgi train --seeds``; it holds ``replicates.json``)."""
    p = Path(path)
    return p.is_dir() and (p / REPLICATES_FILE).is_file()


def is_run_folder(path: str | Path) -> bool:
    """True for a folder holding a checkpoint of one run (one of :data:`CHECKPOINT_NAMES`)."""
    p = Path(path)
    return p.is_dir() and any((p / name).is_file() for name in CHECKPOINT_NAMES)


def kind_of(path: str | Path) -> PathKind:
    """What ``path`` is (see :class:`PathKind`); reads the folder's file names only, never a file."""
    p = Path(path).expanduser()
    if p.is_file():
        return PathKind.CHECKPOINT
    if p.is_dir():
        if is_stacked_folder(p):
            return PathKind.STACKED
        if is_series_folder(p):
            return PathKind.SERIES
        if is_run_folder(p):
            return PathKind.RUN
        return PathKind.OTHER_FOLDER
    return PathKind.PRETRAINED if is_pretrained_name(path) else PathKind.MISSING
