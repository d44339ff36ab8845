"""Pretrained models by name, the catalogue: which folder a name resolves to, and what is built.

A shipped example spec (``cellgi spec example`` lists them) trained once with ``cellgi pretrained build
NAME`` (:func:`cellgi.pretrained.build`, at the top of the package, since it trains) lives in a per-user
folder, and every command that takes a run folder accepts the name::

    cellgi predict emap_real pairs.txt         # the name resolves to its built folder
    model = cellgi.load("emap_real")           # the same from Python

This module only maps names to folders, so that the loader (:func:`cellgi.predictors.load_predictor`)
resolves a name without importing the training layer. The folder is ``$CELLGI_PRETRAINED_DIR/<name>``
when that variable is set, else ``platformdirs.user_cache_dir("cellgi")/pretrained/<name>``
(``~/.cache/cellgi/pretrained/<name>`` on Linux); a built folder holds ``pretrained.json`` (:data:`MANIFEST`).

A name that is not built yet is an error naming the one command that builds it
(:class:`PretrainedNotBuiltError`); an existing path always wins over a name.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from platformdirs import user_cache_dir

from cellgi.errors import CellgiError
from cellgi.examples import UnknownExampleError, example_path, list_examples

__all__ = [
    "MANIFEST",
    "PretrainedError",
    "PretrainedNotBuiltError",
    "PretrainedModel",
    "is_pretrained_name",
    "list_pretrained",
    "pretrained_name",
    "pretrained_dir",
    "pretrained_path",
    "resolve_model_path",
]

#: the record a built folder carries (what, from which spec, when, with which metrics)
MANIFEST = "pretrained.json"


class PretrainedError(CellgiError):
    """A pretrained name that cannot be built or used (unknown name, folder in the way)."""

    exit_code = 2


class PretrainedNotBuiltError(PretrainedError):
    """A shipped name whose model has not been built on this machine yet."""


def pretrained_dir() -> Path:
    """Where built models live: ``$CELLGI_PRETRAINED_DIR``, else ``<user cache dir>/pretrained``."""
    env = os.environ.get("CELLGI_PRETRAINED_DIR")
    if env:
        return Path(env).expanduser()
    return Path(user_cache_dir("cellgi")) / "pretrained"


def pretrained_name(name: str) -> str:
    """``name`` when it is a shipped example spec; else :class:`PretrainedError` with the choices."""
    stem = name[:-5] if name.endswith(".yaml") else name
    try:
        example_path(stem)
    except UnknownExampleError as exc:
        raise PretrainedError(f"no pretrained model {name!r}: {exc}") from None
    return stem


def pretrained_path(name: str) -> Path:
    """The built folder of ``name``.

    Raises:
        PretrainedError: ``name`` is no shipped spec.
        PretrainedNotBuiltError: not built yet; the message names the command that builds it.
    """
    stem = pretrained_name(name)
    folder = pretrained_dir() / stem
    if not (folder / MANIFEST).is_file():
        raise PretrainedNotBuiltError(
            f"pretrained model {stem!r} is not built on this machine (looked in {folder}); build it once with: "
            f"cellgi pretrained build {stem}   (or cellgi.pretrained.build({stem!r}) in Python)")
    return folder


def is_pretrained_name(path: str | Path) -> bool:
    """True when ``path`` is no existing path and no path-like text (no ``/``, no ``.ckpt``/``.pt``) but a
    shipped spec name, which the loaders resolve with :func:`pretrained_path`."""
    p = Path(path).expanduser()
    text = str(path)
    if p.exists() or "/" in text or os.sep in text or text.endswith((".ckpt", ".pt")):
        return False
    try:
        example_path(text)
    except UnknownExampleError:
        return False
    return True


def resolve_model_path(path: str | Path) -> Path:
    """``path`` itself when it exists (or names a folder, e.g. ``runs/x``), else the built folder of the
    pretrained name it is (:func:`pretrained_path`). What every loader calls first; a text that is neither
    comes back as a path, for the loader to report as missing."""
    if is_pretrained_name(path):
        return pretrained_path(str(path))
    return Path(path).expanduser()


@dataclass(frozen=True)
class PretrainedModel:
    """One shipped name and whether it is built here (what ``cellgi pretrained list`` shows)."""

    name: str
    path: Path
    built: bool
    summary: str
    manifest: dict[str, Any] | None


def list_pretrained() -> list[PretrainedModel]:
    """Every shipped spec name with the folder it builds into and its record when built."""
    out = []
    for ex in list_examples():
        folder = pretrained_dir() / ex.name
        manifest = None
        if (folder / MANIFEST).is_file():
            try:
                manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                manifest = None
        out.append(PretrainedModel(ex.name, folder, manifest is not None, ex.summary, manifest))
    return out
