"""Pretrained models by name: a shipped example spec trained once into the user's cache folder.

The real yeast screens cellgi's real-data specs read are not ours to redistribute, so no weights trained on
them ship inside the package. Instead one command trains a shipped spec (``cellgi spec example`` lists them)
into a per-user folder, and every command that takes a run folder then accepts the name::

    cellgi pretrained build emap_real          # once: trains configs/emap_real.yaml into the cache
    cellgi predict emap_real pairs.txt         # the name resolves to that folder
    model = cellgi.load("emap_real")           # the same from Python

This module builds (it trains, so it sits at the top, beside :mod:`cellgi.api`); which folder a name
resolves to, what is built and the errors of a name not built yet are the catalogue's,
:mod:`cellgi.runfolder.pretrained`, which every loader reads. A build trains into a temporary sibling
folder and renames it into place when training finished, so a name never resolves to half a model;
``pretrained.json`` in the folder records what was built, from which spec (its SHA-256), with which
cellgi and overrides, and the test metrics.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from cellgi import __version__
from cellgi.api import train
from cellgi.examples import example_path
from cellgi.nn.memory import check_memory
from cellgi.runfolder.pretrained import MANIFEST, PretrainedError, pretrained_dir, pretrained_name
from cellgi.spec import load_spec

__all__ = ["build"]


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
        cellgi.runfolder.pretrained.PretrainedError: unknown name, or already built and ``force`` is False.
        cellgi.spec.SpecError / cellgi.data.errors.DataError: the spec or its data files (before training).
    """

    stem = pretrained_name(name)
    spec_file = example_path(stem)
    ovr = list(overrides)
    if data_root is not None:
        ovr.append(f"data.root={Path(data_root).expanduser().resolve()}")
    root = pretrained_dir()
    final = root / stem
    if (final / MANIFEST).is_file() and not force:
        raise PretrainedError(f"pretrained model {stem!r} is already built in {final}; rebuild with --force")
    spec = load_spec(spec_file, ovr, checks=[check_memory])  # validated before anything is created
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
