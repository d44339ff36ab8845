"""One training run from a validated spec: run folder, data, model, baseline, Lightning fit and test,
metrics, plots, summary. ``cellgi train`` is a thin shell around :func:`train`.

Order of work (each step only after the previous succeeded):

1. the Lightning ``Trainer`` is configured from ``training.trainer`` (a bad accelerator, strategy or
   precision fails here, before any data is read);
2. a new run folder is created and the resolved spec written into it with its version header
   (or, with ``resume``, the run folder's own spec is read and what the resume ignores is reported);
3. the data is built (``build_data``), splits are saved (or, on resume, read back), the model built;
4. the additive baseline is fitted on the training split and evaluated on every split;
5. ``trainer.fit`` (from ``checkpoints/last.ckpt`` on resume), then ``trainer.test`` of the best
   checkpoint on train, val and test;
6. ``metrics.json``, ``model.pt``, plots and a summary table.

Distributed runs: Lightning starts the other processes (DDP); they rebuild the same data from the spec
and receive the run folder through ``CELLGI_DDP_RUN_DIR`` (single node) or ``--run-dir`` (several nodes,
a shared folder). Only the first process writes files.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint, RichProgressBar
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from rich.console import Console
from rich.table import Table

from cellgi.data.build import DataBundle, build_data
from cellgi.data.genes import GeneMapper
from cellgi.data.normalize import TargetNormalizer
from cellgi.data.splits import load_splits, save_splits
from cellgi.spec import Spec, load_spec
from cellgi.train.baselines import fit_additive_baseline
from cellgi.train.checkpoint import (
    AtomicCheckpointIO,
    build_metadata,
    model_state_of,
    read_checkpoint,
    save_model_file,
)
from cellgi.train.loaders import RunDataModule
from cellgi.train.metrics import InteractionMetrics
from cellgi.train.runs import (
    CKPT_DIR,
    DATA_REPORT_FILE,
    LOG_DIR,
    METRICS_FILE,
    MODEL_FILE,
    PLOTS_DIR,
    SPEC_FILE,
    SPLITS_FILE,
    RunDirError,
    create_run_dir,
    environment_info,
    update_run_status,
    write_json,
    write_spec,
)
from cellgi.train.task import InteractionTask

__all__ = [
    "DDP_RUN_DIR_ENV",
    "ModelBuildError",
    "TrainerConfigError",
    "TrainResult",
    "evaluate_baseline",
    "flatten_metrics",
    "is_primary_process",
    "resume_differences",
    "summary_table",
    "train",
]

#: environment variable through which the first process tells DDP workers the run folder
DDP_RUN_DIR_ENV = "CELLGI_DDP_RUN_DIR"

_RANK_VARS = ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")


def is_primary_process() -> bool:
    """True unless a launcher (Lightning, torchrun, SLURM) marked this process as a non-first rank."""
    return all(os.environ.get(v, "0") in ("", "0") for v in _RANK_VARS)


class TrainerConfigError(Exception):
    """``training.trainer`` settings Lightning refuses (accelerator, devices, strategy, precision)."""


class ModelBuildError(Exception):
    """The spec's model does not fit the data (unknown edge type, head/combiner mismatch, ...)."""


@dataclass
class TrainResult:
    """What a run produced (on the first process; other ranks get ``metrics == {}``)."""

    run_dir: Path
    metrics: dict[str, float] = field(default_factory=dict)
    best_checkpoint: Path | None = None
    last_checkpoint: Path | None = None
    epochs: int = 0
    seconds: float = 0.0
    primary: bool = True


def flatten_metrics(prefix: str, values: dict[str, float]) -> dict[str, float]:
    """``{"pearson": r}`` -> ``{"<prefix>.pearson": r}``; ``target/metric`` keys become ``target.metric``."""
    return {f"{prefix}.{k.replace('/', '.')}": float(v) for k, v in values.items()}


def evaluate_baseline(bundle: DataBundle, alpha: float, threshold: float) -> dict[str, dict[str, float]]:
    """Fit the additive baseline on ``bundle``'s training split (normalised targets, sample weights)
    and compute its metrics on every non-empty split, in original units."""
    ds, norm = bundle.dataset, bundle.normalizer
    model = fit_additive_baseline(ds, bundle.splits["train"], alpha=alpha, y=norm.transform(ds.y))
    out: dict[str, dict[str, float]] = {}
    for stage in ("train", "val", "test"):
        idx = bundle.splits.get(stage)
        if idx is None or idx.numel() == 0:
            continue
        pred = norm.inverse(model.predict(ds, idx).to(torch.float32))
        m = InteractionMetrics(bundle.target_names, threshold, sync=False)
        m.update(pred, ds.y[idx])
        out[stage] = m.compute()
    return out


def _flat_spec(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flat_spec(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: d}


def resume_differences(run_spec: Spec, given: Spec | None) -> list[str]:
    """Dotted spec keys whose value in ``given`` differs from the run's own spec (all ignored on resume)."""
    if given is None:
        return []
    a = _flat_spec(run_spec.model_dump(mode="json"))
    b = _flat_spec(given.model_dump(mode="json"))
    lines = []
    for k in sorted(set(a) | set(b)):
        if a.get(k, "<unset>") != b.get(k, "<unset>"):
            lines.append(f"{k}: given {b.get(k, '<unset>')!r}, the run keeps {a.get(k, '<unset>')!r}")
    return lines


class _ProgressBar(RichProgressBar):
    """Rich progress bar showing the training loss and the throughput (samples/s over all ranks)."""

    def get_metrics(self, trainer: Any, pl_module: Any) -> dict[str, Any]:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        out: dict[str, Any] = {}
        for k, v in items.items():
            if k == "train/loss":
                out["loss"] = v
            elif k == "train/samples_per_s":
                out["samples/s"] = f"{float(v):,.0f}" if isinstance(v, (int, float)) else v
            else:
                out[k] = v
        return out


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


def summary_table(metrics: dict[str, float], target_names: list[str], title: str = "cellgi run") -> Table:
    """Rich table: rows = metrics, columns = model train/val/test and the additive baseline's test."""
    table = Table(title=title, show_lines=False)
    table.add_column("metric")
    for col in ("train", "val", "test", "baseline test"):
        table.add_column(col, justify="right")
    names = ["pearson", "spearman", "mse", "mae", "strong_pearson", "strong_spearman", "strong_auroc", "strong_auprc"]

    def fmt(key: str) -> str:
        v = metrics.get(key)
        if v is None or v != v:
            return "-"
        return f"{v:.4f}"

    for name in names:
        if not any(f"{s}.{name}" in metrics for s in ("train", "val", "test")):
            continue
        label = name
        row = [fmt(f"{s}.{name}") for s in ("train", "val", "test")] + [fmt(f"baseline_additive.test.{name}")]
        if name == "pearson":
            label = "[bold]pearson[/bold]"
            row = [f"[bold]{c}[/bold]" for c in row]
        table.add_row(label, *row)
    if "test.n" in metrics:
        table.caption = (
            f"targets: {', '.join(target_names)}; test samples: {int(metrics['test.n'])}; "
            "metrics in original units; baseline: per-gene additive ridge"
        )
    return table


def _quiet_lightning() -> None:
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda",
                 "lightning.fabric.utilities.seed"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    # epoch metrics come from torchmetrics objects, already gathered over ranks before logging
    warnings.filterwarnings("ignore", message=r".*when logging on epoch level in distributed setting.*")
    warnings.filterwarnings("ignore", message=r".*will save all targets and predictions in the buffer.*")
    warnings.filterwarnings("ignore", message=r".*Checkpoint directory .* exists and is not empty.*")
    warnings.filterwarnings("ignore", message=r".*is smaller than the logging interval.*")
    warnings.filterwarnings("ignore", message=r".*`isinstance\(treespec, LeafSpec\)` is deprecated.*")


def _build_trainer(
    spec: Spec, run_dir: Path, *, progress: bool, has_val: bool
) -> tuple[L.Trainer, ModelCheckpoint, ModelCheckpoint]:
    t = spec.training
    ck = t.checkpoint
    ckpt_dir = run_dir / CKPT_DIR
    monitor = ck.monitor if has_val or not ck.monitor.startswith("val") else None
    best = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="best",
        monitor=monitor,
        mode=ck.mode,
        save_top_k=1,
        every_n_epochs=ck.every_n_epochs,
        auto_insert_metric_name=False,
        enable_version_counter=False,
        save_on_train_epoch_end=False if has_val else True,
    )
    last = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="last",
        monitor=None,
        save_top_k=1,
        every_n_epochs=1,
        enable_version_counter=False,
        save_on_train_epoch_end=False if has_val else True,
    )
    callbacks: list[Any] = [best, last]
    if progress:
        callbacks.append(_ProgressBar(leave=True))
    tr = t.trainer
    loggers = [
        CSVLogger(save_dir=str(run_dir / LOG_DIR), name="csv"),
        TensorBoardLogger(save_dir=str(run_dir / LOG_DIR), name="tensorboard", default_hp_metric=False),
    ]
    trainer = L.Trainer(
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
        callbacks=callbacks,
        logger=loggers,
        default_root_dir=str(run_dir),
        enable_progress_bar=progress,
        enable_model_summary=False,
    )
    return trainer, best, last


def _apply_saved_splits(bundle: DataBundle, run_dir: Path, console: Console | None) -> None:
    """On resume (or in a DDP worker with a finished split file), use the run's own splits."""
    path = run_dir / SPLITS_FILE
    if not path.is_file():
        return
    saved = load_splits(path)
    same = all(k in saved and torch.equal(saved[k], bundle.splits[k]) for k in ("train", "val", "test"))
    if same:
        return
    if console is not None:
        console.print(f"[yellow]note:[/yellow] the data now splits differently; using the run's saved splits ({path})")
    bundle.splits = {k: saved[k] for k in ("train", "val", "test")}
    bundle.normalizer = TargetNormalizer(bundle.normalizer.kind, target_names=bundle.target_names).fit(
        bundle.dataset.y[bundle.splits["train"]]
    )


def train(
    spec: Spec | None = None,
    *,
    run_dir: str | Path | None = None,
    runs_root: str | Path = "runs",
    resume: str | Path | None = None,
    progress: bool = True,
    console: Console | None = None,
) -> TrainResult:
    """Train one run; see the module docstring. Returns the metrics (first process) and paths.

    Args:
        spec: the validated spec (with ``resume`` optional: given values differing from the run's own
            spec are reported as ignored).
        run_dir: the new run's folder (default ``runs_root/<name>/<timestamp>``); refused when it exists.
        resume: a run folder to continue from its ``checkpoints/last.ckpt``.
        progress: show the rich progress bar.
        console: where messages and the summary go (default: stdout).

    Raises:
        RunDirError, CheckpointError, cellgi.data.errors.DataError, SpecError: bad inputs.
    """
    t0 = time.perf_counter()
    _quiet_lightning()
    primary = is_primary_process()
    console = console or Console(soft_wrap=True)
    say = console.print if primary else (lambda *a, **k: None)

    ckpt_path: Path | None = None
    if resume is not None:
        rdir = Path(resume)
        if not (rdir / SPEC_FILE).is_file():
            raise RunDirError(f"{rdir} is not a cellgi run folder (no {SPEC_FILE})")
        ckpt_path = rdir / CKPT_DIR / "last.ckpt"
        if not ckpt_path.is_file():
            raise RunDirError(f"{rdir} has no {CKPT_DIR}/last.ckpt to resume from (the run stopped before its first epoch ended)")
        run_spec = load_spec(rdir / SPEC_FILE)
        ignored = resume_differences(run_spec, spec)
        state = read_checkpoint(ckpt_path)  # CheckpointError when damaged
        say(
            f"resuming [bold]{rdir}[/bold] from {CKPT_DIR}/last.ckpt (epochs completed: {int(state['epoch']) + 1}, "
            f"step {int(state['global_step'])}); the spec is taken from {rdir / SPEC_FILE}"
        )
        if spec is None:
            say("  (a spec file given with --resume would be ignored: the run keeps its own spec, data split and seed)")
        elif ignored:
            say(f"  ignored: {len(ignored)} value(s) of the given spec differ from the run's spec:")
            for line in ignored:
                say(f"    {line}")
        else:
            say("  the given spec equals the run's spec")
        if run_dir is not None and Path(run_dir).resolve() != rdir.resolve():
            say(f"  ignored: --run-dir {run_dir} (a resume continues in its own folder)")
        del state
        spec = run_spec
        rdir_final = rdir
    else:
        if spec is None:
            raise ValueError("train() needs a spec or resume")
        if primary:
            rdir_final = Path(run_dir) if run_dir is not None else None  # type: ignore[assignment]
        else:
            env_dir = os.environ.get(DDP_RUN_DIR_ENV)
            if run_dir is not None:
                rdir_final = Path(run_dir)
            elif env_dir:
                rdir_final = Path(env_dir)
            else:
                raise RunDirError(
                    "this process is a non-first rank of a distributed launch but no run folder is known: "
                    "pass --run-dir DIR (a folder all nodes share)"
                )

    assert spec is not None
    # 1. trainer first: a bad trainer config fails before any data is read or any folder created
    planned = rdir_final if rdir_final is not None else Path(runs_root) / spec.name / "<pending>"
    has_val = spec.data.split.fractions[1] > 0
    if resume is None and primary and rdir_final is not None:
        p = Path(rdir_final)
        if p.exists() and (not p.is_dir() or any(p.iterdir())):
            raise RunDirError(
                f"run folder {p} already exists and is not empty; refusing to overwrite it "
                f"(choose another --run-dir, or continue it with --resume {p})"
            )
    try:
        _build_trainer(spec, Path(planned), progress=False, has_val=has_val)  # validation only
    except (ValueError, TypeError, RuntimeError) as exc:  # Lightning's MisconfigurationException included
        raise TrainerConfigError(f"training.trainer: {exc}") from None

    # 2. run folder and spec
    info = environment_info(spec)
    if resume is None and primary:
        rdir_final = create_run_dir(spec.name, runs_root=runs_root, run_dir=rdir_final)
        write_spec(rdir_final, spec, info)
        update_run_status(rdir_final, status="running", started=info["created"], command=info["command"],
                          versions={k: info[k] for k in ("cellgi", "torch", "torch_geometric", "lightning")},
                          plugins=info["plugins"], seed=info["seed"], split=info["split"])
        os.environ[DDP_RUN_DIR_ENV] = str(rdir_final.resolve())
        say(f"run folder: [bold]{rdir_final}[/bold]")
    elif resume is not None and primary:
        update_run_status(rdir_final, status="running", resume={"at": info["created"], "command": info["command"]})
        os.environ[DDP_RUN_DIR_ENV] = str(Path(rdir_final).resolve())
    rdir = Path(rdir_final)

    try:
        result = _train_in(spec, rdir, ckpt_path, primary=primary, progress=progress, console=console, has_val=has_val)
    except (KeyboardInterrupt, SystemExit):
        if primary:
            update_run_status(rdir, status="interrupted")
        raise
    except BaseException as exc:
        if primary:
            update_run_status(rdir, status="failed", error=f"{type(exc).__name__}: {exc}")
        raise
    result.seconds = time.perf_counter() - t0
    if primary:
        update_run_status(rdir, status="completed", finished=environment_info(spec)["created"],
                          epochs=result.epochs, seconds=round(result.seconds, 2),
                          best_checkpoint=str(result.best_checkpoint) if result.best_checkpoint else None)
    return result


def _train_in(
    spec: Spec,
    rdir: Path,
    ckpt_path: Path | None,
    *,
    primary: bool,
    progress: bool,
    console: Console,
    has_val: bool,
) -> TrainResult:
    say = console.print if primary else (lambda *a, **k: None)
    t = spec.training
    L.seed_everything(spec.seed, workers=True, verbose=False)

    # 3. data, splits, model
    bundle = build_data(spec.data, progress=primary)
    if ckpt_path is not None or not primary:
        _apply_saved_splits(bundle, rdir, console if primary else None)
    elif primary:
        save_splits(bundle.splits, rdir / SPLITS_FILE)
        write_json(rdir / DATA_REPORT_FILE, bundle.report.to_dict())
    for w in bundle.report.warnings:
        say(f"[yellow]data:[/yellow] {w}")
    sizes = {k: int(v.numel()) for k, v in bundle.splits.items()}
    say(
        f"data: {bundle.graph.num_nodes} genes, {', '.join(f'{n} ({et.num_edges} edges)' for n, et in bundle.graph.edge_types.items())}; "
        f"samples train/val/test {sizes['train']}/{sizes['val']}/{sizes['test']}; targets {', '.join(bundle.target_names)}"
    )
    if sizes["val"] == 0 and has_val:
        has_val = False
    from cellgi.nn.model import LazyDango

    try:
        model = LazyDango.from_spec(spec.model, bundle.graph, len(bundle.target_names), base_dir=spec.data.root)
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelBuildError(f"the model cannot be built from this spec and data: {exc}") from exc
    n_params = sum(p.numel() for p in model.parameters())
    say(f"model: {n_params:,} parameters ({spec.model.conv.type} x {spec.model.num_layers}, H={spec.model.hidden_dim}, "
        f"aggregator {spec.model.aggregator.type})")
    mapper = bundle.mapper if bundle.mapper is not None else GeneMapper(bundle.graph.genes)
    info = environment_info(spec)
    meta = build_metadata(
        spec=spec,
        target_names=bundle.target_names,
        graph=bundle.graph,
        mapper=mapper,
        normalizer=bundle.normalizer,
        extra={"versions": {k: info[k] for k in ("cellgi", "torch", "torch_geometric", "lightning")},
               "plugins": info["plugins"], "split": info["split"], "seed": info["seed"]},
    )

    # 4. baseline (first process only; no collective operations involved)
    baseline: dict[str, dict[str, float]] = {}
    if primary and t.baseline.enabled:
        tb = time.perf_counter()
        baseline = evaluate_baseline(bundle, t.baseline.alpha, t.metrics.strong_threshold)
        if "test" in baseline:
            say(f"additive baseline (ridge alpha={t.baseline.alpha:g}, {time.perf_counter() - tb:.1f}s): "
                f"test pearson {baseline['test']['pearson']:.4f}")

    # 5. fit and final evaluation
    stages = tuple(s for s in ("train", "val", "test") if sizes[s] > 0)
    dm = RunDataModule(
        bundle,
        batch_size=spec.data.batch_size,
        eval_batch_size=spec.data.eval_batch_size,
        seed=spec.seed,
        num_workers=spec.data.num_workers,
        persistent_workers=spec.data.persistent_workers,
        final_stages=stages,
    )
    task = InteractionTask(
        model, t, bundle.target_names, bundle.normalizer.mean, bundle.normalizer.std,  # type: ignore[arg-type]
        metadata=meta, final_stages=stages,
        reporter=_epoch_reporter(console, t.checkpoint.monitor) if primary else None,
    )
    trainer, best_cb, last_cb = _build_trainer(spec, rdir, progress=progress and primary, has_val=has_val)
    trainer.fit(task, datamodule=dm, ckpt_path=str(ckpt_path) if ckpt_path is not None else None)
    if trainer.interrupted:
        raise KeyboardInterrupt
    last_path = rdir / CKPT_DIR / "last.ckpt"
    best_path = Path(best_cb.best_model_path) if best_cb.best_model_path else None
    if best_path is None or not best_path.is_file():
        best_path = rdir / CKPT_DIR / "best.ckpt" if (rdir / CKPT_DIR / "best.ckpt").is_file() else last_path
    trainer.test(task, datamodule=dm, ckpt_path=str(best_path), verbose=False)
    epochs = int(trainer.current_epoch)
    result = TrainResult(rdir, best_checkpoint=best_path, last_checkpoint=last_path, epochs=epochs, primary=primary)
    if not primary:
        return result

    # 6. outputs
    metrics: dict[str, float] = {}
    for stage in stages:
        metrics.update(flatten_metrics(stage, task.results[stage]))
    for stage, vals in baseline.items():
        metrics.update(flatten_metrics(f"baseline_additive.{stage}", vals))
    write_json(rdir / METRICS_FILE, metrics)
    obj = read_checkpoint(best_path)
    save_model_file(rdir / MODEL_FILE, model_state_of(obj), {k: v for k, v in obj["cellgi"].items() if k != "digest"})
    best_epoch = int(obj["epoch"])
    del obj
    _write_plots(spec, rdir, task, model)
    result.metrics = metrics
    console.print(summary_table(metrics, bundle.target_names, title=f"{spec.name}: best epoch {best_epoch + 1} of {epochs}"))
    if "test.pearson" in metrics and "baseline_additive.test.pearson" in metrics:
        diff = metrics["test.pearson"] - metrics["baseline_additive.test.pearson"]
        verdict = "beats" if diff > 0 else "does not beat"
        console.print(
            f"test pearson {metrics['test.pearson']:.4f} {verdict} the additive baseline "
            f"({metrics['baseline_additive.test.pearson']:.4f}, {diff:+.4f})"
        )
    console.print(f"wrote {rdir / METRICS_FILE}, {rdir / MODEL_FILE}, plots in {rdir / PLOTS_DIR}")
    return result


def _write_plots(spec: Spec, rdir: Path, task: InteractionTask, model: Any) -> None:
    from cellgi.train.plots import plot_aggregation_weights, plot_learning_curves, plot_test_scatter

    pdir = rdir / PLOTS_DIR
    if task.test_scatter is not None:
        pred, target = task.test_scatter
        plot_test_scatter(pred, target, task.target_names, pdir / "test_scatter.png")
    plot_learning_curves(rdir / LOG_DIR / "csv", pdir / "learning_curves.png", spec.training.checkpoint.monitor)
    if task.aggregation_weights is not None:
        labels = getattr(model, "aggregation_labels", None)
        n_layers = spec.model.num_layers
        w = task.aggregation_weights.reshape(n_layers, -1)
        plot_aggregation_weights(w, labels, pdir / "aggregation_weights.png")


