"""The outputs of a run as Lightning callbacks: each owns one output, and none reads or writes another's
(Lightning's rule: a callback works whichever other callbacks run beside it).

- :class:`RunCheckpoint`: ``checkpoints/best.ckpt`` / ``last.ckpt``; its saved state holds paths
  *relative to the run folder*, so a copied or moved run folder resumes from its own checkpoints;
- :class:`BaselinesCallback`: the baselines, fitted and evaluated when the trainer is set up (its
  ``metrics`` and ``fitted``, read by the run when it ends);
- :class:`ModelFileExport`: ``model.pt`` from the checkpoint that was tested (the best);
- :class:`PlotsCallback`: ``plots/*.png``, also sent to the experiment loggers as figures; a plot that
  cannot be drawn is a warning, never a failed run;
- :class:`ProgressBar`: the rich progress bar (loss, samples/s) - the one-line-per-epoch report is the
  task's ``reporter``.

``metrics.json`` is no callback's: the run returns the model's and the baselines' metrics
(:class:`cellgi.training.runner.TrainResult`), and the layer above writes the file once, with the
stack's when it fits one (:mod:`cellgi.experiments.series`).

File-writing hooks run on the first process only (``rank_zero_only``); a new output is one more
callback in :func:`cellgi.training.runner.run_callbacks` (docs/architecture.md, "Adding a new output of a run").
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import lightning as L
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, RichProgressBar
from lightning.pytorch.utilities import rank_zero_only
from matplotlib.figure import Figure

from cellgi.baselines import Baseline, BaselineData, fit_baselines, run_baselines
from cellgi.data.build import DataBundle
from cellgi.spec import Spec
from cellgi.runfolder.checkpoint import model_state_of, read_checkpoint, save_model_file
from cellgi.runfolder.runs import CKPT_DIR, LOG_DIR, PLOTS_DIR, write_error
from cellgi.training import plots
from cellgi.training.loggers import log_figure
from cellgi.training.task import InteractionTask

__all__ = [
    "BaselinesCallback",
    "ModelFileExport",
    "PlotsCallback",
    "ProgressBar",
    "RunCheckpoint",
    "flatten_metrics",
]


def flatten_metrics(prefix: str, values: dict[str, float]) -> dict[str, float]:
    """``{"pearson": r}`` -> ``{"<prefix>.pearson": r}``; ``target/metric`` keys become ``target.metric``."""
    return {f"{prefix}.{k.replace('/', '.')}": float(v) for k, v in values.items()}


# ------------------------------------------------------------------------------------- checkpoints
class RunCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` in ``<run_dir>/checkpoints`` whose state (best path, last path, top-k
    paths) is saved relative to the run folder and resolved against the folder that resumes it.

    Lightning's own state holds absolute paths: a run folder copied elsewhere would continue from
    (and export) the *original* folder's best checkpoint. Checkpoints written before this class (absolute
    paths) are mapped by file name into this run's ``checkpoints/``.
    """

    def __init__(self, run_dir: str | Path, **kwargs: Any):
        self.run_dir = Path(run_dir)
        super().__init__(dirpath=self.run_dir / CKPT_DIR, **kwargs)

    @property
    def state_key(self) -> str:
        # the same key as a plain ModelCheckpoint with these settings (older checkpoints restore)
        return self._generate_state_key(
            monitor=self.monitor, mode=self.mode, every_n_train_steps=self._every_n_train_steps,
            every_n_epochs=self._every_n_epochs, train_time_interval=self._train_time_interval,
        ).replace(type(self).__qualname__, ModelCheckpoint.__qualname__, 1)

    def _rel(self, p: Any) -> Any:
        if not p:
            return p
        path = Path(p)
        try:
            return path.resolve().relative_to(self.run_dir.resolve()).as_posix()
        except ValueError:
            return f"{CKPT_DIR}/{path.name}"

    def _abs(self, p: Any, relative: bool) -> Any:
        if not p:
            return p
        name = p if relative else f"{CKPT_DIR}/{Path(p).name}"
        return str(self.run_dir / name)

    def state_dict(self) -> dict[str, Any]:
        sd = super().state_dict()
        for k in ("best_model_path", "kth_best_model_path", "last_model_path"):
            sd[k] = self._rel(sd.get(k))
        sd["dirpath"] = CKPT_DIR
        sd["best_k_models"] = {self._rel(k): v for k, v in (sd.get("best_k_models") or {}).items()}
        sd["paths_relative_to_run"] = True
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        rel = bool(state_dict.get("paths_relative_to_run"))
        sd = dict(state_dict)
        for k in ("best_model_path", "kth_best_model_path", "last_model_path"):
            if k in sd:
                sd[k] = self._abs(sd[k], rel)
        sd["best_k_models"] = {self._abs(k, rel): v for k, v in (sd.get("best_k_models") or {}).items()}
        sd["dirpath"] = self.dirpath
        super().load_state_dict(sd)


# ------------------------------------------------------------------------------------------ outputs
class BaselinesCallback(Callback):
    """Fits the run's baselines (``training.baselines``) on the training split and evaluates them on every
    split, once per process start (first process), when the trainer is set up for fitting or, on a resume
    whose training had finished, for testing.

    Its output is its own: :attr:`metrics` (``<baseline>.<split>.<metric>``) and :attr:`fitted` (the fitted
    baselines, which a stack blends instead of fitting them again); the run reads them when it ends
    (:class:`cellgi.training.runner.TrainResult`). No other callback reads or writes them.

    Args:
        bundle: the run's data.
        spec: the run's spec.
        say: a print function for the one-line report.
    """

    def __init__(self, bundle: DataBundle, spec: Spec, say: Callable[..., None]):
        self.bundle, self.spec = bundle, spec
        self.say = say
        self.results: dict[str, dict[str, dict[str, float]]] = {}
        self.fitted: dict[str, Baseline] = {}

    @property
    def metrics(self) -> dict[str, float]:
        """``{"baseline_additive.test.pearson": r, ...}`` (empty before :meth:`setup`, and on other ranks)."""
        out: dict[str, float] = {}
        for name, per_split in self.results.items():
            for split, values in per_split.items():
                out.update(flatten_metrics(f"{name}.{split}", values))
        return out

    @rank_zero_only
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.results:  # fit then test in one process: fitted once
            return
        t0 = time.perf_counter()
        data = BaselineData.of_bundle(self.bundle, int(self.spec.seed))  # one set-feature pass for all
        self.fitted = fit_baselines(self.bundle, self.spec, data=data)
        self.results = run_baselines(self.bundle, self.spec, fitted=self.fitted, data=data)
        for name, per_split in self.results.items():
            if "test" in per_split:
                self.say(f"{name.replace('_', ' ')}: test pearson {per_split['test'].get('pearson', float('nan')):.4f}"
                         f" ({time.perf_counter() - t0:.1f}s)")


class ModelFileExport(Callback):
    """Writes ``model.pt`` (weights-only, with the metadata) from the checkpoint ``trainer.test`` used."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.best_epoch: int | None = None

    @rank_zero_only
    def on_test_end(self, trainer: L.Trainer, pl_module: InteractionTask) -> None:
        if not trainer.ckpt_path:
            return
        obj = read_checkpoint(trainer.ckpt_path)
        meta = {k: v for k, v in obj["cellgi"].items() if k != "digest"}
        try:
            save_model_file(self.path, model_state_of(obj), meta)
        except OSError as exc:
            raise write_error(self.path, exc) from exc
        self.best_epoch = int(obj["epoch"])


class PlotsCallback(Callback):
    """Writes ``plots/`` after the final evaluation and sends each figure to the experiment loggers.

    A plot that fails (odd data, a logger that refuses a figure) is reported with ``warn`` and
    skipped: the model file is already written.
    """

    def __init__(self, run_dir: str | Path, monitor: str | None, num_layers: int, warn: Callable[[str], None]):
        self.run_dir = Path(run_dir)
        self.monitor = monitor
        self.num_layers = num_layers
        self.warn = warn
        self.written: list[Path] = []

    @rank_zero_only
    def on_test_end(self, trainer: L.Trainer, pl_module: InteractionTask) -> None:
        pdir = self.run_dir / PLOTS_DIR
        step = int(trainer.global_step)

        def to_loggers(name: str, fig: Figure) -> None:
            log_figure(trainer.loggers, name, fig, step)

        jobs: list[tuple[str, Callable[[], Path | None]]] = []
        if pl_module.test_scatter is not None:
            pred, target = pl_module.test_scatter
            jobs.append(("test_scatter", lambda: plots.plot_test_scatter(
                pred, target, pl_module.target_names, pdir / "test_scatter.png", to_loggers)))
        jobs.append(("learning_curves", lambda: plots.plot_learning_curves(
            self.run_dir / LOG_DIR / "csv", pdir / "learning_curves.png", self.monitor, to_loggers)))
        if pl_module.aggregation_weights is not None:
            w = pl_module.aggregation_weights.reshape(self.num_layers, -1)
            labels = getattr(pl_module.model, "aggregation_labels", None)
            jobs.append(("aggregation_weights", lambda: plots.plot_aggregation_weights(
                w, labels, pdir / "aggregation_weights.png", to_loggers)))
        for name, job in jobs:
            try:
                out = job()
            except Exception as exc:  # noqa: BLE001 - a plot never fails a finished run
                self.warn(f"plot {name} skipped: {type(exc).__name__}: {exc}")
                continue
            if out is not None:
                self.written.append(out)


class ProgressBar(RichProgressBar):
    """Rich progress bar showing the training loss and the throughput (samples/s over all ranks)."""

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
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
