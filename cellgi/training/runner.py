"""One training run from a validated spec: the training layer. It trains ONE run and returns its result
(:class:`TrainResult`); what is done with runs after that (seed series, the seed ensemble, the stack,
``metrics.json``, the report) is the layer above, :mod:`cellgi.experiments.series`, which ``cellgi train``
and :func:`cellgi.train` call. Nothing here imports :mod:`cellgi.experiments`.

:func:`train` reads as the sequence it runs (each step only after the previous succeeded):

1. plan: a new run, or a resume checked against the run folder (its own spec unchanged, its own
   checkpoint, not already complete); the Lightning ``Trainer`` settings and the experiment loggers are
   checked (a bad accelerator, or a logger whose package is missing, fails here, before any data is read);
2. the run folder is claimed atomically (``run.lock``) and the resolved spec written into it;
3. the data is built, splits saved (or, on resume, read back), the model built;
4. ``trainer.fit`` (from ``checkpoints/last.ckpt`` on resume; skipped when a resumed run had finished
   training and only its outputs were missing) and ``trainer.test`` of the best checkpoint on every split;
   the outputs are Lightning callbacks (:mod:`cellgi.training.callbacks`): checkpoints, the baselines,
   ``model.pt``, plots;
5. ``run.json`` says completed, failed or interrupted (SIGINT exits 130, SIGTERM 143:
   :class:`TrainingInterrupted`); the result holds the model's and the baselines' metrics, which the
   layer above writes to ``metrics.json``.

Distributed runs: Lightning starts the other processes (DDP); they rebuild the same data from the spec
and receive the run folder through ``CELLGI_DDP_RUN_DIR`` (single node) or ``--run-dir`` (several nodes,
a shared folder). Only the first process writes files (Lightning's ``rank_zero_only``).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
import random
import signal
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Callable, Iterator, Sequence

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping
from lightning.pytorch.loggers import Logger
from rich.console import Console

from cellgi.baselines import Baseline, additive_alpha, warm_start_model
from cellgi.data.build import DataBundle, build_data
from cellgi.data.datamodule import CellDataModule
from cellgi.data.genes import GeneMapper
from cellgi.data.grid import deleted_genes, is_grid
from cellgi.data.normalize import TargetNormalizer
from cellgi.data.splits import map_saved_splits, save_splits
from cellgi.errors import CellgiError
from cellgi.nn.model import LazyDango
from cellgi.spec import Spec, load_spec, validate_spec
from cellgi.spec.training import monitor_problems
from cellgi.training.callbacks import (
    BaselinesCallback,
    ModelFileExport,
    PlotsCallback,
    ProgressBar,
    RunCheckpoint,
    flatten_metrics,
)
from cellgi.runfolder.checkpoint import AtomicCheckpointIO, CheckpointError, build_metadata, read_checkpoint
from cellgi.training.loggers import LoggerConfigError, build_loggers, check_loggers, flat_spec, log_spec
from cellgi.runfolder.runs import (
    CKPT_DIR,
    DATA_REPORT_FILE,
    INPUTS_DIR,
    LOCK_FILE,
    LOG_DIR,
    METRICS_FILE,
    MODEL_FILE,
    RUN_FILE,
    SPEC_FILE,
    SPLITS_FILE,
    RunDirError,
    claim_run_dir,
    create_run_dir,
    environment_info,
    new_run_id,
    read_json,
    run_completed,
    release_run_dir,
    update_run_status,
    write_error,
    write_json,
    write_spec,
)
from cellgi.training.task import InteractionTask

#: a print function (rich markup); a no-op on other ranks
Say = Callable[..., None]

__all__ = [
    "DDP_RUN_DIR_ENV",
    "ModelBuildError",
    "TrainerConfigError",
    "FiniteGuard",
    "TrainingDiverged",
    "TrainingInterrupted",
    "TrainResult",
    "apply_saved_splits",
    "flatten_metrics",
    "global_state_kept",
    "is_primary_process",
    "measured_sizes",
    "resume_differences",
    "run_callbacks",
    "signals_interrupt",
    "train",
]

#: environment variable through which the first process tells DDP workers the run folder
DDP_RUN_DIR_ENV = "CELLGI_DDP_RUN_DIR"


_RANK_VARS = ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")


def is_primary_process() -> bool:
    """True unless a launcher (Lightning, torchrun, SLURM) marked this process as a non-first rank.

    Read from the launcher's environment because it is needed before the trainer exists (to claim the
    run folder); it also counts ``NODE_RANK``, which Lightning's ``rank_zero_only`` does not see until
    the strategy is set up. Once training runs, the callbacks use ``rank_zero_only``.
    """
    return all(os.environ.get(v, "0") in ("", "0") for v in _RANK_VARS)


class TrainerConfigError(CellgiError):
    """``training.trainer`` / ``training.loggers`` / ``training.early_stopping`` settings that cannot run."""

    exit_code = 2


class ModelBuildError(CellgiError):
    """The spec's model does not fit the data (unknown edge type, head/combiner mismatch, ...)."""

    exit_code = 2


class TrainingDiverged(CellgiError):
    """The loss or an error metric (mse, mae) became NaN or inf: the run stops, ``run.json`` says failed."""

    exit_code = 1


#: logged values that are finite in any sound run (correlations may be undefined: NaN is allowed there)
_MUST_BE_FINITE = ("/loss", "/loss_epoch", "/mse", "/mae")


class FiniteGuard(Callback):
    """Stops a run whose loss or error metrics stop being finite (after each training and validation epoch
    and after testing, before ``metrics.json`` is written): :class:`TrainingDiverged`."""

    def _check(self, trainer: L.Trainer, when: str, prefixes: tuple[str, ...] | None = None) -> None:
        values = {k: float(v) for k, v in trainer.callback_metrics.items()}
        bad = []
        for key, v in values.items():
            if not key.endswith(_MUST_BE_FINITE) or (prefixes is not None and not key.startswith(prefixes)):
                continue
            stage, _, name = key.rpartition("/")
            if math.isnan(v) and name in ("mse", "mae") and not values.get(f"{stage}/n", 1.0) > 0:
                continue  # undefined (no measured sample), not diverged
            if not math.isfinite(v):
                bad.append(f"{key} = {v}")
        if bad:
            raise TrainingDiverged(
                f"training diverged: {', '.join(sorted(bad))} {when} (lower training.optimizer.lr, set "
                "training.gradient_clip_val, or check the targets' scale)")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._check(trainer, f"after epoch {trainer.current_epoch + 1}", ("train/",))

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._check(trainer, f"in validation after epoch {trainer.current_epoch + 1}", ("val/",))

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._check(trainer, "in the final evaluation")


class TrainingInterrupted(BaseException):
    """The run was stopped by a signal (SIGINT, SIGTERM); ``run.json`` says ``interrupted``.

    A ``BaseException`` (like ``KeyboardInterrupt``) so that no ``except Exception`` swallows it.
    ``exit_code`` is ``128 + signal`` (130 for SIGINT, 143 for SIGTERM).
    """

    def __init__(self, signum: int, run_dir: Path | None = None):
        self.signum = int(signum)
        self.exit_code = 128 + self.signum
        self.run_dir = run_dir
        super().__init__(f"interrupted by {signal.Signals(self.signum).name}")


@dataclass
class TrainResult:
    """What one run produced (on the first process; other ranks get ``metrics == {}``).

    ``metrics`` are the model's final metrics per split (``test.pearson``, ...) and the baselines'
    (``baseline_additive.test.pearson``, ...): what ``metrics.json`` holds, which the layer above writes
    (with the stack's metrics when it fits one). A run that was complete before (``complete_before``)
    has its ``metrics.json`` read back. ``bundle`` and ``baselines`` (the data and the fitted baselines,
    in memory only) let the layer above fit a stack without building them again; it drops them after.
    """

    run_dir: Path
    metrics: dict[str, float] = field(default_factory=dict)
    best_checkpoint: Path | None = None
    last_checkpoint: Path | None = None
    epochs: int = 0
    seconds: float = 0.0
    primary: bool = True
    complete_before: bool = False
    #: the epoch after which early stopping ended the run (None: it ran its max_epochs)
    stopped_early: int | None = None
    #: the epoch (0-based) of the checkpoint that was tested
    best_epoch: int | None = None
    target_names: list[str] = field(default_factory=list)
    bundle: DataBundle | None = field(default=None, repr=False)
    baselines: dict[str, Baseline] = field(default_factory=dict, repr=False)


def measured_sizes(bundle: DataBundle) -> dict[str, int]:
    """Samples per split that have at least one measured (non-NaN) target: rows with every target
    NaN count for nothing (no loss, no metric) and are not counted as samples."""
    if is_grid(bundle.dataset):  # every pair of a grid has a target (listed or neutral)
        return {k: int(v.numel()) for k, v in bundle.splits.items()}
    measured = ~torch.isnan(bundle.dataset.y.reshape(len(bundle.dataset), -1)).all(dim=1)
    return {k: int(measured[v].sum()) for k, v in bundle.splits.items()}


def resume_differences(run_spec: Spec, given: Spec | None) -> list[str]:
    """Dotted spec keys whose value in ``given`` differs from the run's own spec (all ignored on resume)."""
    if given is None:
        return []
    a = flat_spec(run_spec.model_dump(mode="json"))
    b = flat_spec(given.model_dump(mode="json"))
    lines = []
    for k in sorted(set(a) | set(b)):
        if a.get(k, "<unset>") != b.get(k, "<unset>"):
            lines.append(f"{k}: given {b.get(k, '<unset>')!r}, the run keeps {a.get(k, '<unset>')!r}")
    return lines


def _epoch_reporter(console: Console, monitor: str | None):
    """A function printing one line per finished epoch (first process only)."""

    def report(epoch: int, max_epochs: int, values: dict[str, float], seconds: float) -> None:
        def get(k: str) -> str:
            v = values.get(k)
            return "-" if v is None or v != v else f"{float(v):.4f}"

        parts = [f"epoch {epoch + 1}/{max_epochs}", f"train loss {get('train/loss_epoch')}",
                 f"train pearson {get('train/pearson')}"]
        if "val/pearson" in values:
            parts += [f"val loss {get('val/loss')}", f"val pearson {get('val/pearson')}"]
        if monitor and monitor not in ("val/pearson", "val/loss", "train/pearson") and monitor in values:
            parts.append(f"{monitor} {get(monitor)}")
        parts.append(f"{seconds:.1f}s")
        console.print(" | ".join(parts), highlight=False)

    return report


_QUIET_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda",
                  "lightning.fabric.utilities.seed")


@contextlib.contextmanager
def global_state_kept() -> Iterator[None]:
    """A run (or a series of runs) as a library call leaves the process as it found it: warning filters,
    the level of every logger (Lightning's, the ones it quiets, any a library sets while training),
    environment variables (Lightning's seed variables, the DDP run folder), torch's deterministic-algorithms
    switch, cuDNN's flags and the thread count, and the random number generators that
    ``seed_everything`` seeds (Python's, NumPy's, torch's; CUDA's when it is initialised); signal
    handlers: :func:`signals_interrupt`. Nested uses are harmless."""
    env = dict(os.environ)
    rng = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    cudnn = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    manager = logging.root.manager
    levels = {name: lg.level for name, lg in manager.loggerDict.items() if isinstance(lg, logging.Logger)}
    levels.update({name: logging.getLogger(name).level for name in _QUIET_LOGGERS})
    root_level = logging.root.level
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    threads = torch.get_num_threads()
    try:
        with warnings.catch_warnings():
            yield
    finally:
        for k in [k for k in os.environ if k not in env]:
            del os.environ[k]
        for k, v in env.items():
            if os.environ.get(k) != v:
                os.environ[k] = v
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        logging.root.setLevel(root_level)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = cudnn
        random.setstate(rng[0])
        np.random.set_state(rng[1])
        torch.set_rng_state(rng[2])
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)


def _quiet_lightning() -> None:
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    # epoch metrics come from torchmetrics objects, already gathered over ranks before logging
    warnings.filterwarnings("ignore", message=r".*when logging on epoch level in distributed setting.*")
    warnings.filterwarnings("ignore", message=r".*will save all targets and predictions in the buffer.*")
    warnings.filterwarnings("ignore", message=r".*Checkpoint directory .* exists and is not empty.*")
    warnings.filterwarnings("ignore", message=r".*is smaller than the logging interval.*")
    warnings.filterwarnings("ignore", message=r".*`isinstance\(treespec, LeafSpec\)` is deprecated.*")


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`TrainingInterrupted` while a run is in progress (main thread); the
    handlers found are put back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise TrainingInterrupted(signum)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


# ------------------------------------------------------------------------------------------- the plan
@dataclass
class _Plan:
    spec: Spec
    run_dir: Path | None
    resume_ckpt: Path | None = None
    run_id: str = ""
    complete: TrainResult | None = None
    #: the run had finished training (run.json has ``finished``) but its outputs were not all written
    #: (stopped while the layer above fitted its stack or wrote metrics.json): test again, do not fit
    trained: dict[str, Any] | None = None


def _plan_resume(rdir: Path, given: Spec | None, run_dir: str | Path | None, say: Say) -> _Plan:
    """Check a run folder before resuming it; refuse anything that is not its own."""
    if not rdir.is_dir() or not (rdir / SPEC_FILE).is_file():
        raise RunDirError(f"{rdir} is not a cellgi run folder (no {SPEC_FILE})")
    run_spec = load_spec(rdir / SPEC_FILE)
    status = read_json(rdir / RUN_FILE) if (rdir / RUN_FILE).is_file() else {}
    if run_completed(rdir):
        say(f"run [bold]{rdir}[/bold] is complete ({status.get('epochs', '?')} epochs, finished "
            f"{status.get('finished', '?')}); nothing to resume. Its results: {rdir / METRICS_FILE}")
        metrics = {k: (float("nan") if v is None else v) for k, v in read_json(rdir / METRICS_FILE).items()}
        done = TrainResult(rdir, metrics=metrics, best_checkpoint=rdir / CKPT_DIR / "best.ckpt",
                           last_checkpoint=rdir / CKPT_DIR / "last.ckpt", epochs=int(status.get("epochs") or 0),
                           complete_before=True)
        return _Plan(run_spec, rdir, complete=done)
    ckpt = rdir / CKPT_DIR / "last.ckpt"
    if not ckpt.is_file():
        raise RunDirError(f"{rdir} has no {CKPT_DIR}/last.ckpt to resume from (the run stopped before its first epoch ended)")
    state = read_checkpoint(ckpt)  # CheckpointError when damaged
    meta = state["cellgi"]
    run_id = str(status.get("run_id") or "")
    ck_id = str((meta.get("extra") or {}).get("run_id") or "")
    if run_id and ck_id and run_id != ck_id:
        raise RunDirError(
            f"{ckpt} belongs to another run (run id {ck_id}, this folder's {RUN_FILE} says {run_id}); "
            "a run resumes from its own checkpoints only"
        )
    try:
        ck_spec = validate_spec(json.loads(meta["spec_json"]))
    except Exception as exc:  # noqa: BLE001 - reported as a damaged checkpoint
        raise CheckpointError(ckpt, f"its stored spec does not validate: {exc}") from None
    edited = resume_differences(ck_spec, run_spec)
    if edited:
        lines = "\n".join(f"  {ln.replace('given', 'spec.yaml has').replace('the run keeps', 'the checkpoint was trained with')}"
                          for ln in edited)
        raise RunDirError(
            f"{rdir / SPEC_FILE} was edited after the run started; it differs from the spec stored in "
            f"{CKPT_DIR}/last.ckpt in {len(edited)} value(s):\n{lines}\n"
            "restore the file (a resume continues the same run), or start a new run with the edited spec"
        )
    trained = status if status.get("finished") and (rdir / MODEL_FILE).is_file() else None
    if trained is not None:
        say(f"resuming [bold]{rdir}[/bold]: its training finished ({status.get('epochs', '?')} epochs) and its "
            f"outputs are completed now (the best checkpoint tested again); the spec is taken from {rdir / SPEC_FILE}")
    else:
        say(
            f"resuming [bold]{rdir}[/bold] from {CKPT_DIR}/last.ckpt (epochs completed: {int(state['epoch']) + 1}, "
            f"step {int(state['global_step'])}); the spec is taken from {rdir / SPEC_FILE}"
        )
    ignored = resume_differences(run_spec, given)
    if given is None:
        say("  (a spec file given with --resume would be ignored: the run keeps its own spec, data split and seed)")
    elif ignored:
        say(f"  ignored: {len(ignored)} value(s) of the given spec differ from the run's spec:")
        for line in ignored:
            say(f"    {line}")
    else:
        say("  the given spec equals the run's spec")
    if run_dir is not None and Path(run_dir).resolve() != rdir.resolve():
        say(f"  ignored: --run-dir {run_dir} (a resume continues in its own folder)")
    return _Plan(run_spec, rdir, resume_ckpt=ckpt, run_id=run_id or ck_id or new_run_id(), trained=trained)


def _plan(spec: Spec | None, run_dir: str | Path | None, resume: str | Path | None, primary: bool, say: Say) -> _Plan:
    if resume is not None:
        return _plan_resume(Path(resume), spec, run_dir, say)
    if spec is None:
        raise ValueError("train() needs a spec or resume")
    if primary:
        rdir = Path(run_dir) if run_dir is not None else None
        if rdir is not None and rdir.exists() and (
            not rdir.is_dir() or any(p.name not in (LOCK_FILE, INPUTS_DIR) for p in rdir.iterdir())
        ):
            raise RunDirError(
                f"run folder {rdir} already exists and is not empty; refusing to overwrite it "
                f"(choose another --run-dir, or continue it with --resume {rdir})"
            )
        return _Plan(spec, rdir, run_id=new_run_id())
    env_dir = os.environ.get(DDP_RUN_DIR_ENV)
    if run_dir is None and not env_dir:
        raise RunDirError(
            "this process is a non-first rank of a distributed launch but no run folder is known: "
            "pass --run-dir DIR (a folder all nodes share)"
        )
    return _Plan(spec, Path(run_dir) if run_dir is not None else Path(env_dir))  # type: ignore[arg-type]


def _check_settings(spec: Spec, planned: Path, has_val: bool) -> None:
    """Build (and drop) the trainer: bad trainer, logger or early-stopping settings fail before any data."""
    try:
        check_loggers(spec.training.loggers)
    except LoggerConfigError as exc:
        raise TrainerConfigError(str(exc)) from None
    es = spec.training.early_stopping
    if es is not None and es.monitor.startswith("val/") and not has_val:
        raise TrainerConfigError(
            f"training.early_stopping.monitor: {es.monitor!r} needs a validation split, and "
            "data.split.fractions gives none (monitor a train/ metric, or add a validation fraction)"
        )
    check_monitors(spec)
    try:
        _build_trainer(spec, planned, callbacks=[], loggers=False, progress=False, has_val=has_val)
    except (ValueError, TypeError, RuntimeError) as exc:  # Lightning's MisconfigurationException included
        raise TrainerConfigError(f"training.trainer: {exc}") from None


def check_monitors(spec: Spec) -> None:
    """The checkpoint and early-stopping monitors name keys the run will log (checked before any data;
    a spec read from a file has this checked at validation, with the line)."""
    problems = monitor_problems(spec)
    if problems:
        loc, msg = problems[0]
        raise TrainerConfigError(f"{'.'.join(loc)}: {msg}")


def _build_trainer(
    spec: Spec, run_dir: Path, *, callbacks: Sequence[Callback], loggers: list[Logger] | bool, progress: bool, has_val: bool
) -> L.Trainer:
    t, tr = spec.training, spec.training.trainer
    return L.Trainer(
        accelerator=tr.accelerator,
        devices=tr.devices,
        num_nodes=tr.num_nodes,
        strategy=tr.strategy,
        precision=tr.precision,  # type: ignore[arg-type]
        deterministic=tr.deterministic,
        max_epochs=t.max_epochs,
        gradient_clip_val=t.gradient_clip_val,
        log_every_n_steps=t.log_every_n_steps,
        limit_train_batches=t.limit_train_batches,
        limit_val_batches=None if has_val else 0,
        num_sanity_val_steps=1 if has_val else 0,
        use_distributed_sampler=False,
        plugins=[AtomicCheckpointIO()],
        callbacks=list(callbacks),
        logger=loggers,
        default_root_dir=str(run_dir),
        enable_progress_bar=progress,
        enable_model_summary=False,
    )


def run_callbacks(
    spec: Spec, rdir: Path, bundle: DataBundle, *, has_val: bool, progress: bool, say: Say, warn: Callable[[str], None],
) -> tuple[list[Callback], RunCheckpoint]:
    """The callbacks of a run, each owning one output: checkpoints, early stopping, baselines,
    ``model.pt``, plots (and the progress bar); the second value is the best-checkpoint callback."""
    t = spec.training
    ck = t.checkpoint
    monitor = ck.monitor if has_val or not ck.monitor.startswith("val") else None
    on_train_end = not has_val
    best = RunCheckpoint(rdir, filename="best", monitor=monitor, mode=ck.mode, save_top_k=1,
                         every_n_epochs=ck.every_n_epochs, auto_insert_metric_name=False,
                         enable_version_counter=False, save_on_train_epoch_end=on_train_end)
    last = RunCheckpoint(rdir, filename="last", monitor=None, save_top_k=1, every_n_epochs=1,
                         enable_version_counter=False, save_on_train_epoch_end=on_train_end)
    cbs: list[Callback] = [best, last]
    if t.early_stopping is not None:
        es = t.early_stopping
        cbs.append(EarlyStopping(monitor=es.monitor, patience=es.patience, mode=es.mode, min_delta=es.min_delta,
                                 check_on_train_epoch_end=not es.monitor.startswith("val/"), check_finite=False))
    if t.baselines:
        cbs.append(BaselinesCallback(bundle, spec, say))
    cbs += [ModelFileExport(rdir / MODEL_FILE),
            PlotsCallback(rdir, ck.monitor, spec.model.num_layers, warn)]
    if progress:
        cbs.append(ProgressBar(leave=True))
    return cbs, best


def train(
    spec: Spec | None = None,
    *,
    run_dir: str | Path | None = None,
    runs_root: str | Path = "runs",
    resume: str | Path | None = None,
    progress: bool = True,
    console: Console | None = None,
    callbacks: Sequence[Callback] = (),
) -> TrainResult:
    """Train one run; see the module docstring. Returns the metrics (first process) and paths; writes
    no ``metrics.json`` (the layer above does, once: :func:`cellgi.experiments.series.train_series`).

    Args:
        spec: the validated spec (with ``resume`` optional: given values differing from the run's own
            spec are reported as ignored).
        run_dir: the new run's folder (default ``runs_root/<name>/<timestamp>``); refused when it exists.
        resume: a run folder to continue from its ``checkpoints/last.ckpt``; a completed run is reported
            as complete (``TrainResult.complete_before``) and nothing runs; a run whose training finished
            but whose ``metrics.json`` is missing is tested again (no more training).
        progress: show the rich progress bar.
        console: where messages and the summary go (default: stdout).
        callbacks: more Lightning callbacks for the trainer.

    Raises:
        RunDirError, RunWriteError, CheckpointError, TrainerConfigError, ModelBuildError,
        cellgi.data.errors.DataError, SpecError: bad inputs or a failed write (nothing written before
        is lost). TrainingDiverged: the loss or mse/mae became NaN or inf (``run.json`` says failed).
        TrainingInterrupted: SIGINT or SIGTERM (``exit_code`` 130 / 143).
    """
    with global_state_kept():
        return _train(spec, run_dir=run_dir, runs_root=runs_root, resume=resume, progress=progress,
                      console=console, callbacks=callbacks)


def _train(spec: Spec | None, *, run_dir: str | Path | None, runs_root: str | Path, resume: str | Path | None, progress: bool,
           console: Console | None, callbacks: Sequence[Callback]) -> TrainResult:
    t0 = time.perf_counter()
    _quiet_lightning()
    primary = is_primary_process()
    console = console or Console(soft_wrap=True)
    say = console.print if primary else (lambda *a, **k: None)
    with signals_interrupt():
        plan = _plan(spec, run_dir, resume, primary, say)  # 1. what to run
        if plan.complete is not None:
            return plan.complete
        spec = plan.spec
        has_val = spec.data.split.has_validation
        _check_settings(spec, plan.run_dir or Path(runs_root) / spec.name / "<pending>", has_val)
        rdir = _open_run_folder(plan, runs_root, primary, resumed=resume is not None, say=say)  # 2. claim
        try:
            result = _train_in(spec, rdir, plan, primary=primary, progress=progress, console=console,
                               has_val=has_val, extra_callbacks=callbacks)  # 3.-5.
        except TrainingInterrupted as exc:
            exc.run_dir = rdir
            _finish(rdir, primary, status="interrupted", signal=signal.Signals(exc.signum).name)
            raise
        except (KeyboardInterrupt, SystemExit):
            _finish(rdir, primary, status="interrupted")
            raise
        except OSError as exc:  # a write outside the checkpoint/metrics writers (splits, reports, logs)
            _finish(rdir, primary, status="failed", error=f"{type(exc).__name__}: {exc}")
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise write_error(exc.filename or rdir, exc) from exc
            raise
        except BaseException as exc:
            _finish(rdir, primary, status="failed", error=f"{type(exc).__name__}: {exc}")
            raise
        result.seconds = time.perf_counter() - t0
        if plan.trained is not None:  # tested again: the time and end of its training stay as they were
            result.seconds = float(plan.trained.get("seconds") or 0.0) + result.seconds
        _finish(rdir, primary, status="completed", finished=environment_info(spec)["created"],
                epochs=result.epochs, seconds=round(result.seconds, 2),
                best_checkpoint=_in_run(result.best_checkpoint, rdir),
                **({"stopped_early": {"after_epoch": result.stopped_early, "max_epochs": spec.training.max_epochs,
                                      "monitor": spec.training.early_stopping.monitor}}  # type: ignore[union-attr]
                   if result.stopped_early else {}))
    return result


def _in_run(path: Path | None, rdir: Path) -> str | None:
    """``path`` relative to the run folder (``checkpoints/best.ckpt``), whether either is relative or absolute."""
    if path is None:
        return None
    full, root = Path(path).resolve(), Path(rdir).resolve()
    return full.relative_to(root).as_posix() if full.is_relative_to(root) else None


def _open_run_folder(plan: _Plan, runs_root: str | Path, primary: bool, *, resumed: bool, say: Say) -> Path:
    """Claim the run folder (new: created with its lock, spec and run.json; resumed: locked)."""
    assert plan.run_dir is not None or primary
    if not primary:
        return Path(plan.run_dir)  # type: ignore[arg-type]
    spec = plan.spec
    info = environment_info(spec)
    if resumed:
        rdir = Path(plan.run_dir)  # type: ignore[arg-type]
        claim_run_dir(rdir)
        try:
            update_run_status(rdir, status="running", run_id=plan.run_id,
                              resume={"at": info["created"], "command": info["command"]})
        except BaseException:
            release_run_dir(rdir)
            raise
    else:
        rdir = create_run_dir(spec.name, runs_root=runs_root, run_dir=plan.run_dir)  # atomic claim
        try:
            write_spec(rdir, spec, info)
            update_run_status(rdir, status="running", run_id=plan.run_id, started=info["created"],
                              command=info["command"],
                              versions={k: info[k] for k in ("cellgi", "torch", "torch_geometric", "lightning")},
                              plugins=info["plugins"], seed=info["seed"], split=info["split"])
        except OSError as exc:
            release_run_dir(rdir)
            raise write_error(getattr(exc, "filename", None) or rdir, exc) from exc
        say(f"run folder: [bold]{rdir}[/bold]")
    os.environ[DDP_RUN_DIR_ENV] = str(rdir.resolve())
    return rdir


def _finish(rdir: Path, primary: bool, **fields: Any) -> None:
    """Record the outcome in run.json (best effort: a full disk must not hide the real error) and
    release the run folder."""
    if not primary:
        return
    try:
        update_run_status(rdir, **fields)
    except OSError:
        pass
    finally:
        release_run_dir(rdir)


def _load_data(spec: Spec, rdir: Path, resumed: bool, primary: bool, console: Console) -> DataBundle:
    """Build the data; a new run saves its splits, a resume (or a DDP worker) uses the saved ones."""
    say = console.print if primary else (lambda *a, **k: None)
    bundle = build_data(spec.data, progress=primary)
    if resumed or not primary:
        apply_saved_splits(bundle, rdir, console if primary else None)
    else:
        save_splits(bundle.splits, rdir / SPLITS_FILE, bundle.dataset, bundle.graph.genes)
        write_json(rdir / DATA_REPORT_FILE, bundle.report.to_dict())
    for w in bundle.report.warnings:
        say(f"[yellow]data:[/yellow] {w}")
    sizes = measured_sizes(bundle)
    rows = {k: int(v.numel()) for k, v in bundle.splits.items()}
    unmeasured = sum(rows[k] - sizes[k] for k in ("train", "val", "test"))
    note = f" ({unmeasured} rows with no measured target left out)" if unmeasured else ""
    say(
        f"data: {bundle.graph.num_nodes} genes, "
        f"{', '.join(f'{n} ({et.num_edges} edges)' for n, et in bundle.graph.edge_types.items())}; "
        f"samples train/val/test {sizes['train']}/{sizes['val']}/{sizes['test']}{note}; "
        f"targets {', '.join(bundle.target_names)}"
    )
    if sizes["train"] == 0:
        raise RunDirError("the training split has no sample with a measured target; nothing to train on")
    return bundle


def _build_model(spec: Spec, bundle: DataBundle, say: Say) -> LazyDango:
    try:
        model = LazyDango.from_spec(spec.model, bundle.graph, len(bundle.target_names),
                                    node_features=bundle.gene_features, feature_names=bundle.feature_names)
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelBuildError(f"the model cannot be built from this spec and data: {exc}") from exc
    # genes without a training sample use the shared 'unknown' ID vector (docs/model.md)
    model.set_training_genes(deleted_genes(bundle.dataset, bundle.splits["train"]))
    prepared = warm_start_model(model, bundle, alpha=additive_alpha(spec))
    if prepared:
        say(f"additive term, from the training split: {'; '.join(prepared)}")
    n_params = sum(p.numel() for p in model.parameters())
    say(f"model: {n_params:,} parameters ({spec.model.conv.type} x {spec.model.num_layers}, H={spec.model.hidden_dim}, "
        f"aggregator {spec.model.aggregator.type})")
    return model


def _metadata(spec: Spec, bundle: DataBundle, run_id: str) -> dict[str, Any]:
    info = environment_info(spec)
    mapper = bundle.mapper if bundle.mapper is not None else GeneMapper(bundle.graph.genes)
    return build_metadata(
        spec=spec, target_names=bundle.target_names, graph=bundle.graph, mapper=mapper, normalizer=bundle.normalizer,
        feature_names=bundle.feature_names,
        extra={"versions": {k: info[k] for k in ("cellgi", "torch", "torch_geometric", "lightning")},
               "plugins": info["plugins"], "split": info["split"], "seed": info["seed"], "run_id": run_id,
               "train_set_sizes": _train_set_sizes(bundle)},
    )


def _train_set_sizes(bundle: DataBundle) -> dict[str, int]:
    """Gene-set size -> training samples (``cellgi predict`` warns for sizes outside these)."""
    sizes = bundle.dataset.set_sizes[bundle.splits["train"]]
    values, counts = sizes.unique(return_counts=True)
    return {str(int(v)): int(c) for v, c in zip(values, counts)}


def _train_in(
    spec: Spec,
    rdir: Path,
    plan: _Plan,
    *,
    primary: bool,
    progress: bool,
    console: Console,
    has_val: bool,
    extra_callbacks: Sequence[Callback],
) -> TrainResult:
    say = console.print if primary else (lambda *a, **k: None)
    L.seed_everything(spec.seed, workers=True, verbose=False)
    loggers = build_loggers(spec.training.loggers, rdir / LOG_DIR, spec.name)
    bundle = _load_data(spec, rdir, plan.resume_ckpt is not None, primary, console)
    sizes = measured_sizes(bundle)
    has_val = has_val and sizes["val"] > 0
    model = _build_model(spec, bundle, say)
    stages = tuple(s for s in bundle.splits if sizes.get(s, 0) > 0)
    dm = CellDataModule.from_spec(spec.data, bundle=bundle, seed=spec.seed, final_stages=stages)
    task = InteractionTask(
        model, spec.training, bundle.target_names, bundle.normalizer.mean, bundle.normalizer.std,  # type: ignore[arg-type]
        metadata=_metadata(spec, bundle, plan.run_id), final_stages=stages,
        reporter=_epoch_reporter(console, spec.training.checkpoint.monitor) if primary else None,
    )
    cbs, best_cb = run_callbacks(spec, rdir, bundle, has_val=has_val, progress=progress and primary,
                                 say=say, warn=lambda m: say(f"[yellow]warning:[/yellow] {m}"))
    # the guard first: its on_test_end runs before model.pt is written
    trainer = _build_trainer(spec, rdir, callbacks=[FiniteGuard(), *cbs, *extra_callbacks], loggers=loggers,
                             progress=progress and primary, has_val=has_val)
    if primary:
        log_spec(trainer.loggers, spec)
    if plan.trained is None:
        trainer.fit(task, datamodule=dm, ckpt_path=str(plan.resume_ckpt) if plan.resume_ckpt is not None else None)
        if trainer.interrupted:
            raise KeyboardInterrupt
        # read before testing: loading the best checkpoint for the test restores the callback's older state
        es_cb = next((c for c in cbs if isinstance(c, EarlyStopping)), None)
        stopped_early = (es_cb is not None and es_cb.wait_count >= es_cb.patience
                         and trainer.current_epoch < spec.training.max_epochs)
    else:  # its training finished before: its early stop is the one run.json recorded
        es_cb = None
        stopped_early = bool(plan.trained.get("stopped_early"))
    last_path = rdir / CKPT_DIR / "last.ckpt"
    best_path = Path(best_cb.best_model_path) if best_cb.best_model_path else None
    if best_path is None or not best_path.is_file():
        best_path = rdir / CKPT_DIR / "best.ckpt" if (rdir / CKPT_DIR / "best.ckpt").is_file() else last_path
    trainer.test(task, datamodule=dm, ckpt_path=str(best_path), verbose=False)
    epochs = int(trainer.current_epoch) if plan.trained is None else int(plan.trained.get("epochs") or 0)
    result = TrainResult(rdir, best_checkpoint=best_path, last_checkpoint=last_path, epochs=epochs, primary=primary,
                         target_names=list(bundle.target_names))
    for lg in trainer.loggers:
        lg.finalize("success")
    if not primary:
        return result
    # the run's result, read from the task (the model's final metrics) and the baselines' own callback
    metrics: dict[str, float] = {}
    for stage in task.final_stages:
        metrics.update(flatten_metrics(stage, task.results[stage]))
    baselines_cb = next((c for c in cbs if isinstance(c, BaselinesCallback)), None)
    if baselines_cb is not None:
        metrics.update(baselines_cb.metrics)
        result.baselines = dict(baselines_cb.fitted)
    result.metrics = metrics
    result.bundle = bundle
    result.best_epoch = next((c.best_epoch for c in cbs if isinstance(c, ModelFileExport)), None)
    if stopped_early:
        result.stopped_early = epochs
        if es_cb is not None:
            say(f"early stopping: {es_cb.monitor} did not improve for {es_cb.patience} epoch(s); stopped after "
                f"epoch {epochs} of {spec.training.max_epochs}")
    return result


def apply_saved_splits(bundle: DataBundle, run_dir: Path, console: Console | None) -> None:
    """On resume (or in a DDP worker with a finished split file), use the run's own splits, mapped onto
    the data as it is now by sample identity (:func:`~cellgi.data.splits.map_saved_splits`): rows added
    to a file since are left out (and said so), a sample that is gone is a :class:`DataError`."""
    path = run_dir / SPLITS_FILE
    if not path.is_file():
        return
    mapped = map_saved_splits(path, bundle.dataset, bundle.graph.genes)
    saved = mapped.splits
    if mapped.new_samples and console is not None:
        console.print(f"[yellow]note:[/yellow] the data changed since the run started; its splits are kept "
                      f"sample by sample, and {mapped.new_samples} sample(s) new since are left out of every split"
                      + "".join(f"\n  {d}" for d in mapped.details), highlight=False)
    same = all(k in saved and torch.equal(saved[k], bundle.splits[k]) for k in ("train", "val", "test"))
    if same:
        return
    bundle.splits = {k: saved[k] for k in saved}
    bundle.normalizer = TargetNormalizer(bundle.normalizer.kind, target_names=bundle.target_names).fit(
        bundle.dataset.y[bundle.splits["train"]]
    )
