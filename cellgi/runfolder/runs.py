"""Run folders: ``runs/<name>/<timestamp>/`` with the resolved spec, splits, checkpoints, logs, metrics, plots.

The file names of a run folder, a seed series' parent and a stacked folder are this module's constants;
what a given path is (run, checkpoint, series, stack, pretrained name) says
:func:`cellgi.runfolder.layout.kind_of`.

Layout (names are module constants)::

    spec.yaml            resolved spec, written before any data is read, with a header comment
                         (cellgi, plugin, torch/PyG/Lightning versions, seed, split)
    run.json             status (running/completed/failed/interrupted), command lines, times, resumes
    data_report.json     what the data build read and left out
    splits.npz           train/val/test sample indices and each sample's identity (gene-set hash, file,
                         line), by which a resume maps the splits onto edited data
    checkpoints/         last.ckpt (every epoch, atomic) and best.ckpt (by training.checkpoint.monitor)
    model.pt             weights-only model file (from the best checkpoint) for evaluate/predict
    metrics.json         final train/val/test metrics and the additive baseline's
    logs/csv/version_N/metrics.csv, logs/tensorboard/version_N/   (one version per start or resume)
    plots/               test_scatter.png, learning_curves.png, aggregation_weights.png
    run.lock             while a process trains in it (host and pid); removed when it stops

A run folder is never overwritten: :func:`create_run_dir` refuses an existing, non-empty folder, and
claims the folder atomically (``run.lock`` created with ``O_EXCL``), so of two ``cellgi train`` started
into the same folder at once the second fails at once. A resume takes the same lock
(:func:`claim_run_dir`); a lock left by a killed process (same host, process gone) is taken over.
Nothing inside refers to the folder's own location: a run folder can be moved or copied and resumed.
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import math
import os
import platform
import sys
import uuid
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import yaml

from cellgi import __version__
from cellgi.errors import CellgiError
from cellgi.fileio import describe_os_error, write_text_atomic
from cellgi.registry import installed_plugins

if TYPE_CHECKING:  # pragma: no cover - types only: cellgi.spec is heavier than this module needs
    from cellgi.spec import Spec

__all__ = [
    "CKPT_DIR",
    "DATA_REPORT_FILE",
    "LOG_DIR",
    "METRICS_FILE",
    "MODEL_FILE",
    "PLOTS_DIR",
    "PLAN_FILE",
    "REPLICATES_FILE",
    "STACK_FILE",
    "STACK_SUMMARY_FILE",
    "INPUTS_DIR",
    "LOCK_FILE",
    "RUN_FILE",
    "SPEC_FILE",
    "SPLITS_FILE",
    "RunDirError",
    "RunWriteError",
    "claim_run_dir",
    "create_run_dir",
    "new_run_id",
    "release_run_dir",
    "environment_info",
    "read_json",
    "run_completed",
    "spec_header",
    "timestamp",
    "update_run_status",
    "write_error",
    "write_json",
    "write_spec",
]

SPEC_FILE = "spec.yaml"
RUN_FILE = "run.json"
DATA_REPORT_FILE = "data_report.json"
SPLITS_FILE = "splits.npz"
CKPT_DIR = "checkpoints"
MODEL_FILE = "model.pt"
METRICS_FILE = "metrics.json"
LOG_DIR = "logs"
PLOTS_DIR = "plots"
LOCK_FILE = "run.lock"
#: inputs written for a run before it starts (``cellgi.fit(spec, data=df)``: the DataFrame as a table); a
#: new run may be created in a folder holding only this and the lock
INPUTS_DIR = "inputs"
#: a seed series' parent folder: the per-seed summary (the parent then loads as the seed ensemble)
REPLICATES_FILE = "replicates.json"
#: a seed series' parent folder, written when the series starts: the resolved spec and the seeds
PLAN_FILE = "replicates.plan.json"
#: a stacked folder: the fitted baselines and the blend's weights (read with ``weights_only=True``)
STACK_FILE = "stack.pt"
#: a stacked folder: members, weights and each member's validation Pearson (for people)
STACK_SUMMARY_FILE = "stack.json"


class RunDirError(CellgiError):
    """A run folder that cannot be created or used (exists already, not a run, in use, ...)."""

    exit_code = 2


class RunWriteError(CellgiError):
    """Writing into the run folder failed (disk full, permissions); earlier files are intact."""

    exit_code = 1


def new_run_id() -> str:
    """A random identifier of one run (stored in ``run.json`` and in every checkpoint)."""
    return uuid.uuid4().hex


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's live process
        return True
    return True


def claim_run_dir(run_dir: str | Path) -> Path:
    """Create ``run_dir/run.lock`` with ``O_EXCL`` (host and pid inside) or raise :class:`RunDirError`.

    A lock of a process that no longer runs on this host (``kill -9``) is stale and taken over.
    """
    lock = Path(run_dir) / LOCK_FILE
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                host, pid = lock.read_text().split()[:2]
                stale = host == platform.node() and not _pid_alive(int(pid))
            except (OSError, ValueError):
                host, pid, stale = "?", "?", False
            if stale:
                lock.unlink(missing_ok=True)
                continue
            raise RunDirError(
                f"run folder {run_dir} is in use by another cellgi process (host {host}, pid {pid}; {lock}); "
                "wait for it to finish, or delete the lock file if that process is gone"
            ) from None
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{platform.node()} {os.getpid()}\n")
        return lock
    raise RunDirError(f"could not take the lock {lock}")  # pragma: no cover


def release_run_dir(run_dir: str | Path) -> None:
    """Remove this process's ``run.lock`` (left alone when another process holds it)."""
    lock = Path(run_dir) / LOCK_FILE
    try:
        host, pid = lock.read_text().split()[:2]
    except (OSError, ValueError):
        return
    if host == platform.node() and int(pid) == os.getpid():
        lock.unlink(missing_ok=True)


def timestamp(now: _dt.datetime | None = None) -> str:
    """``YYYYmmdd-HHMMSS`` (local time): the name of a new run folder."""
    return (now or _dt.datetime.now()).strftime("%Y%m%d-%H%M%S")


def create_run_dir(name: str, *, runs_root: str | Path = "runs", run_dir: str | Path | None = None) -> Path:
    """Create a new run folder: ``run_dir`` when given, else ``runs_root/name/<timestamp>``.

    The new folder is claimed (:func:`claim_run_dir`): its ``run.lock`` exists when this returns.

    Raises:
        RunDirError: the folder exists and is not empty (a run is never overwritten), or another
            process claimed it first. A timestamped folder that collides with a run started in the
            same second gets a ``-2``, ``-3``... suffix.
    """
    if run_dir is not None:
        p = Path(run_dir)
        if p.exists() and not p.is_dir():
            raise RunDirError(f"run folder {p} exists and is a file, not a folder")
        if p.exists() and any(q.name not in (LOCK_FILE, INPUTS_DIR) for q in p.iterdir()):
            raise RunDirError(
                f"run folder {p} already exists and is not empty; refusing to overwrite it "
                f"(choose another --run-dir, or continue it with --resume {p})"
            )
        try:
            p.mkdir(parents=True, exist_ok=True)
            claim_run_dir(p)
        except OSError as exc:
            raise RunDirError(f"cannot create run folder {p}: {describe_os_error(exc)}") from None
        return p
    base = Path(runs_root) / name
    stamp = timestamp()
    try:
        base.mkdir(parents=True, exist_ok=True)
        for i in range(1, 1000):
            p = base / (stamp if i == 1 else f"{stamp}-{i}")
            try:
                p.mkdir()
            except FileExistsError:
                continue
            claim_run_dir(p)
            return p
    except OSError as exc:  # read-only, a file on the way, a full disk
        raise RunDirError(f"cannot create a run folder under {base}: {describe_os_error(exc)}") from None
    raise RunDirError(f"could not create a new run folder under {base}")  # pragma: no cover


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _command_line() -> str:
    if not sys.argv or not sys.argv[0]:
        return ""
    prog = Path(sys.argv[0]).name
    if prog in ("__main__.py", "cellgi"):
        prog = "cellgi"
    return " ".join([prog] + sys.argv[1:])


def environment_info(spec: Spec) -> dict[str, Any]:
    """Versions, plugins, seed and split of a run (for the spec header, ``run.json`` and checkpoints)."""
    split = spec.data.split
    return {
        "cellgi": __version__,
        "plugins": [f"{n}-{v}" for n, v in installed_plugins()],
        "python": platform.python_version(),
        "torch": _version("torch"),
        "torch_geometric": _version("torch-geometric"),
        "lightning": _version("lightning"),
        "torchmetrics": _version("torchmetrics"),
        "seed": int(spec.seed),
        "split": f"{split.kind} {'/'.join(f'{f:g}' for f in split.fractions)} seed {split.seed}",
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "host": platform.node(),
        "command": _command_line(),
    }


def spec_header(info: Mapping[str, Any]) -> str:
    """The comment block at the top of a run's ``spec.yaml``."""
    plugins = ", ".join(info.get("plugins") or []) or "none"
    lines = [
        "resolved spec of a cellgi run (written before training; `cellgi train --resume` reads it)",
        f"cellgi {info['cellgi']} | plugins: {plugins}",
        f"python {info['python']} | torch {info['torch']} | torch_geometric {info['torch_geometric']} | "
        f"lightning {info['lightning']} | torchmetrics {info['torchmetrics']}",
        f"seed {info['seed']} | split {info['split']}",
        f"created {info['created']} on {info['host']}",
    ]
    if info.get("command"):
        lines.append(f"command: {info['command']}")
    return "".join(f"# {ln}\n" for ln in lines)


def write_spec(run_dir: str | Path, spec: Spec, info: Mapping[str, Any]) -> Path:
    """Write the resolved spec (``spec.model_dump``, absolute ``data.root``) with :func:`spec_header`."""
    body = yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False, default_flow_style=False, width=100)
    return write_text_atomic(Path(run_dir) / SPEC_FILE, spec_header(info) + body)


def _clean(obj: Any) -> Any:
    """NaN/inf -> None (JSON has no NaN), tuples -> lists, recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def write_json(path: str | Path, obj: Any) -> Path:
    """Atomic, indented JSON; NaN and inf become ``null``."""
    return write_text_atomic(path, json.dumps(_clean(obj), indent=2, sort_keys=False) + "\n")


def write_error(path: str | Path, exc: OSError) -> RunWriteError:
    """A :class:`RunWriteError` for a failed write of ``path`` (a full disk named as such)."""
    if exc.errno == errno.ENOSPC:
        why = "no space left on device"
    elif exc.errno == errno.EDQUOT:
        why = "disk quota exceeded"
    else:
        why = exc.strerror or str(exc)
    return RunWriteError(
        f"could not write {path}: {why}. Files written before (earlier checkpoints, spec, splits) are "
        "intact; free space and continue with --resume"
    )


def read_json(path: str | Path) -> dict[str, Any]:
    """The JSON object in ``path`` (a run's ``run.json``, ``metrics.json``, ...)."""
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def run_completed(run_dir: str | Path) -> bool:
    """Whether the run in ``run_dir`` finished: ``run.json`` says ``completed`` and ``metrics.json`` exists
    (an unreadable ``run.json`` counts as not finished)."""
    p = Path(run_dir)
    try:
        status = read_json(p / RUN_FILE)
    except (OSError, ValueError):
        return False
    return status.get("status") == "completed" and (p / METRICS_FILE).is_file()


def update_run_status(run_dir: str | Path, **fields: Any) -> dict[str, Any]:
    """Merge ``fields`` into ``run.json`` (created when missing); ``resumes`` entries are appended."""
    p = Path(run_dir) / RUN_FILE
    state: dict[str, Any] = read_json(p) if p.is_file() else {}
    for k, v in fields.items():
        if k == "resume":
            state.setdefault("resumes", []).append(v)
        else:
            state[k] = v
    write_json(p, state)
    return state
