"""Pretrained models by name: a shipped example spec trained once into the user's cache folder.

The real yeast screens cellgi's real-data specs read are not ours to redistribute, so no weights trained on
them ship inside the package. Instead one command trains a shipped spec (``cellgi spec example`` lists them)
into a per-user folder, and every command that takes a run folder then accepts the name::

    cellgi pretrained build emap_real          # once: trains configs/emap_real.yaml into the cache
    cellgi predict emap_real pairs.txt         # the name resolves to that folder
    model = cellgi.load("emap_real")           # the same from Python

The folder is ``$CELLGI_PRETRAINED_DIR/<name>`` when that variable is set, else
``platformdirs.user_cache_dir("cellgi")/pretrained/<name>`` (``~/.cache/cellgi/pretrained/<name>`` on
Linux). A build trains into a temporary sibling folder and renames it into place when training finished,
so a name never resolves to half a model; ``pretrained.json`` in the folder records what was built, from
which spec (its SHA-256), with which cellgi and overrides, and the test metrics.

A name that is not built yet is an error naming the one command that builds it
(:class:`PretrainedNotBuiltError`); an existing path always wins over a name.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from cellgi.errors import CellgiError

__all__ = [
    "MANIFEST",
    "PretrainedError",
    "PretrainedNotBuiltError",
    "PretrainedModel",
    "build",
    "list_pretrained",
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
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("cellgi")) / "pretrained"


def _check_name(name: str) -> str:
    """``name`` when it is a shipped example spec; else :class:`PretrainedError` with the choices."""
    from cellgi.examples import UnknownExampleError, example_path

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
    stem = _check_name(name)
    folder = pretrained_dir() / stem
    if not (folder / MANIFEST).is_file():
        raise PretrainedNotBuiltError(
            f"pretrained model {stem!r} is not built on this machine (looked in {folder}); build it once with: "
            f"cellgi pretrained build {stem}   (or cellgi.pretrained.build({stem!r}) in Python)")
    return folder


def resolve_model_path(path: str | Path) -> Path:
    """``path`` itself when it exists (or names a folder, e.g. ``runs/x``), else the built folder of the
    pretrained name it is (:func:`pretrained_path`). What every loader calls first."""
    p = Path(path).expanduser()
    text = str(path)
    if p.exists() or "/" in text or os.sep in text or text.endswith((".ckpt", ".pt")):
        return p
    from cellgi.examples import UnknownExampleError, example_path

    try:
        example_path(text)
    except UnknownExampleError:
        return p  # neither a file nor a shipped name: the loader reports the missing path
    return pretrained_path(text)


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
    from cellgi.examples import list_examples

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


def build(
    name: str,
    overrides: Sequence[str] = (),
    *,
    data_root: str | Path | None = None,
    force: bool = False,
    progress: bool = False,
) -> Path:
    """Train the shipped spec ``name`` into its pretrained folder and return the folder.

    Args:
        name: a shipped example spec (``"emap_real"``, ``"quickstart"``; ``cellgi spec example`` lists them).
        overrides: ``KEY.PATH=VALUE`` strings applied to the spec (e.g. ``["training.seeds=[0]"]``); recorded.
        data_root: the folder the real-data specs read from (``data.root``) when it is not where the spec
            expects it (next to a source checkout: ``../shared/data/yeast``).
        force: rebuild when already built (the old folder is replaced only after the new one finished).
        progress: show training progress.

    Raises:
        PretrainedError: unknown name, or already built and ``force`` is False.
        cellgi.spec.SpecError / cellgi.data.errors.DataError: the spec or its data files (before training).
    """
    from cellgi import __version__
    from cellgi.api import train
    from cellgi.examples import example_path
    from cellgi.spec import load_spec

    stem = _check_name(name)
    spec_file = example_path(stem)
    ovr = list(overrides)
    if data_root is not None:
        ovr.append(f"data.root={Path(data_root).expanduser().resolve()}")
    root = pretrained_dir()
    final = root / stem
    if (final / MANIFEST).is_file() and not force:
        raise PretrainedError(f"pretrained model {stem!r} is already built in {final}; rebuild with --force")
    spec = load_spec(spec_file, ovr)  # validated before anything is created
    if spec.data.synthetic is None and not Path(spec.data.root).is_dir():
        raise PretrainedError(
            f"{stem!r} reads real data from data.root, and {spec.data.root} does not exist: pass the folder "
            f"with the yeast files (docs/data.md) as --data-root DIR (Python: data_root=DIR)")
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale(root, stem)
    work = root / f".{stem}.building-{os.getpid()}"
    if work.exists():
        shutil.rmtree(work)
    started = datetime.now(timezone.utc)
    try:
        result = train(spec, run_dir=work / "run", progress=progress)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    run = work / "run"
    metrics = {k: v for k, v in dict(result.metrics).items() if isinstance(v, (int, float)) and k.startswith(
        ("test", "baseline_additive.test", "baseline_features.test", "stack.test"))}
    manifest = {
        "name": stem,
        "spec": spec_file.name,
        "spec_sha256": hashlib.sha256(spec_file.read_bytes()).hexdigest(),
        "overrides": ovr,
        "cellgi": __version__,
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "metrics": metrics,
    }
    (run / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    old = root / f".{stem}.old-{os.getpid()}"
    if final.exists():
        final.rename(old)
    run.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    return final


def _remove_stale(root: Path, stem: str) -> None:
    """Delete work folders of builds of ``stem`` whose process is gone (a build killed with SIGKILL)."""
    for p in root.glob(f".{stem}.*-*"):
        try:
            pid = int(p.name.rsplit("-", 1)[1])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(p, ignore_errors=True)
        except (ValueError, PermissionError, OSError):
            continue
