"""Hyperparameter sweeps with Optuna: each trial is one ``cellgi train`` run with sampled overrides.

The search space is the spec's ``sweep`` block (:class:`cellgi.spec.sweep.SweepSpec`) or a YAML file of
the same shape. The study lives in Optuna's storage (SQLite at ``RUNS_ROOT/<name>/study.db`` by default,
any database URL Optuna accepts otherwise), so:

- a sweep killed half-way resumes where it stopped: run the same command again; ``n_trials`` is the
  total of finished (complete or pruned) trials the study should hold, so only the missing ones run,
  and a trial left running by a killed process is failed after its heartbeat stops and run again
  with the same values;
- several processes or machines can work on one study at once (same ``--storage`` and
  ``--study-name``; use a server database such as PostgreSQL across machines).

Trials are pruned through ``optuna_integration.PyTorchLightningPruningCallback`` on the sweep's metric,
reported after every validation epoch. Outputs, in ``RUNS_ROOT/<name>/sweeps/<study>/``: one run folder
per trial (``trial_0000`` ...), ``trials.csv``, ``best.yaml`` (the best trial's resolved spec, a spec of
its own) and ``plots/*.png`` (Optuna's matplotlib plots).
"""

from __future__ import annotations

import csv
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import matplotlib
import matplotlib.pyplot as plt
import yaml
from pydantic import ValidationError
from rich.console import Console

from cellgi.errors import CellgiError
from cellgi.experiments.report import report
from cellgi.experiments.series import train_series
from cellgi.nn.memory import check_memory
from cellgi.nn.model import NonFiniteError
from cellgi.spec import load_spec
from cellgi.spec.errors import SpecError, SpecIssue, issues_from_validation
from cellgi.spec.overrides import dump_spec_yaml
from cellgi.spec.sweep import CategoricalParam, FloatParam, IntParam, Scalar, SweepSpec
from cellgi.spec.yamlio import Located, SpecSyntaxError, load_yaml
from cellgi.training.runner import TrainingInterrupted

# optuna and optuna-integration are optional (the sweep extra): imported inside the functions that use them,
# so that a missing one is the clear SweepConfigError of run_sweep, not an ImportError of this module
if TYPE_CHECKING:  # pragma: no cover - types only
    import optuna
    from lightning.pytorch import LightningModule, Trainer
    from optuna.trial import FrozenTrial

__all__ = [
    "SweepConfigError",
    "SweepResult",
    "TrialRow",
    "default_storage",
    "load_space",
    "run_sweep",
    "trial_overrides",
]

#: seconds between a running trial's heartbeats, and how long a silent trial is trusted (RDB storage)
HEARTBEAT_S = 30
GRACE_S = 120

class SweepConfigError(CellgiError):
    """A sweep that cannot start: no search space, a study with another direction, no optuna."""

    exit_code = 2


@dataclass
class TrialRow:
    """One trial of the study, flat."""

    number: int
    state: str
    value: float | None
    params: dict[str, Any]
    run_dir: str = ""
    seconds: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class SweepResult:
    """What a sweep returns: the study's trials (this process's and every other's), the best one, files."""

    study_name: str
    storage: str
    folder: Path
    metric: str
    direction: str
    trials: list[TrialRow]
    new_trials: int
    best: TrialRow | None
    best_spec: Path | None
    table: Path
    plots: list[Path]
    plots_skipped: dict[str, str]


def default_storage(runs_root: str | Path, name: str) -> str:
    """``sqlite:///RUNS_ROOT/<name>/study.db`` (absolute; the folder is created)."""
    folder = Path(runs_root).resolve() / name
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'study.db'}"


def load_space(path: str | Path) -> SweepSpec:
    """A :class:`~cellgi.spec.sweep.SweepSpec` from its own YAML file (the ``sweep`` block's content).

    Raises:
        SpecError: unreadable YAML or an invalid space (``FILE:LINE: path: message``).
    """
    try:
        located = load_yaml(path)
    except SpecSyntaxError as exc:
        raise SpecError([SpecIssue(exc.file, exc.line, "", exc.message)]) from None
    data = located.data
    if isinstance(data, dict) and set(data) == {"sweep"}:  # a file holding the block under its key
        data = data["sweep"]
        located = Located(data, {k[1:]: v for k, v in located.lines.items() if k[:1] == ("sweep",)},
                          located.file, located.text)
    if not isinstance(data, dict):
        raise SpecError([SpecIssue(str(path), 1, "", "a sweep space is a mapping with params: {...}")])
    try:
        return SweepSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(issues_from_validation(exc, data, located)) from None


def _value_text(value: Any) -> str:
    """An override value that reads back as ``value`` (YAML flow style)."""
    if isinstance(value, float):
        return repr(value)
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("...").strip()


def trial_overrides(params: dict[str, Any]) -> list[str]:
    """``key=value`` overrides of a trial's sampled values."""
    return [f"{k}={_value_text(v)}" for k, v in params.items()]


def _suggest(trial: optuna.Trial, key: str, p: FloatParam | IntParam | CategoricalParam) -> Scalar:
    if p.type == "float":
        return trial.suggest_float(key, p.low, p.high, log=p.log, step=p.step)
    if p.type == "int":
        return trial.suggest_int(key, p.low, p.high, step=p.step, log=p.log)
    return trial.suggest_categorical(key, p.choices)


def _pruner(spec: SweepSpec) -> optuna.pruners.BasePruner:
    import optuna

    p = spec.pruner
    if p.type == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=p.n_startup_trials, n_warmup_steps=p.n_warmup_steps)
    if p.type == "percentile":
        return optuna.pruners.PercentilePruner(p.percentile, n_startup_trials=p.n_startup_trials,
                                               n_warmup_steps=p.n_warmup_steps)
    if p.type == "hyperband":
        return optuna.pruners.HyperbandPruner()
    return optuna.pruners.NopPruner()


def _sampler(spec: SweepSpec) -> optuna.samplers.BaseSampler:
    import optuna

    s = spec.sampler
    if s.type == "random":
        return optuna.samplers.RandomSampler(seed=s.seed)
    if s.type == "grid":
        return optuna.samplers.GridSampler({k: list(p.choices) for k, p in spec.params.items()}, seed=s.seed)
    return optuna.samplers.TPESampler(seed=s.seed)


def _storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna storage for ``url``: RDB URLs get heartbeats, so a killed process's trial is retried."""
    import optuna
    from optuna import storages

    if "://" not in url:
        raise SweepConfigError(f"--storage {url}: give a database URL (sqlite:///path/study.db, postgresql://...)")
    try:
        if hasattr(storages, "RetryHeartbeatStaleTrialCallback"):  # optuna >= 4.9
            retry = {"heartbeat_stale_trial_callback": storages.RetryHeartbeatStaleTrialCallback(max_retry=2)}
        else:
            retry = {"failed_trial_callback": storages.RetryFailedTrialCallback(max_retry=2)}
        return storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S, **retry)
    except (ImportError, optuna.exceptions.StorageInternalError, ValueError) as exc:
        raise SweepConfigError(f"--storage {url}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy's errors for a bad URL or unreachable server
        raise SweepConfigError(f"--storage {url}: {type(exc).__name__}: {exc}") from None


def _pruning_callback(trial: optuna.Trial, monitor: str) -> Any:  # a local Callback subclass (.pruned)
    """Optuna's Lightning pruning callback, made to stop training instead of raising mid-fit, so the run
    folder of a pruned trial is a finished (short) run; :func:`run_sweep` then marks the trial pruned."""
    import optuna
    from optuna_integration import PyTorchLightningPruningCallback

    class StopWhenPruned(PyTorchLightningPruningCallback):
        pruned = ""

        def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
            try:
                super().on_validation_end(trainer, pl_module)
            except optuna.TrialPruned as exc:
                self.pruned = str(exc)
                trainer.should_stop = True

    return StopWhenPruned(trial, monitor)


def _row(t: FrozenTrial, metric_key: str) -> TrialRow:
    secs = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and t.datetime_start else None
    value = t.value if t.values is not None and len(t.values) == 1 else None
    return TrialRow(t.number, t.state.name.lower(), value, dict(t.params), t.user_attrs.get("run_dir", ""),
                    secs, dict(t.user_attrs.get("metrics", {})))


def run_sweep(
    spec_path: str | Path,
    *,
    overrides: Sequence[str] = (),
    space: str | Path | None = None,
    n_trials: int | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    runs_root: str | Path = "runs",
    on_trial: Callable[[TrialRow], None] | None = None,
    console: Console | None = None,
    plots: bool = True,
) -> SweepResult:
    """Run (or resume) the Optuna study of ``spec_path`` until it holds ``n_trials`` finished trials.

    Args:
        spec_path: the spec file; its ``sweep`` block is the search space unless ``space`` is given.
        overrides: ``key=value`` overrides applied to every trial before the sampled ones.
        space: a YAML file with the search space (replaces the spec's ``sweep`` block).
        n_trials: overrides ``sweep.n_trials``.
        storage: an Optuna storage URL (default :func:`default_storage`).
        study_name: default: the spec's name.
        on_trial: called with each trial this process finishes.
        console: where each trial's training messages go (default: nowhere).
        plots: save Optuna's plots.

    Raises:
        SpecError: an invalid spec, space, or a sampled value the spec refuses (checked for every
            range end and choice before the first trial).
        SweepConfigError: no search space; a study of that name with the other direction; a bad storage.
        TrainingInterrupted: SIGINT or SIGTERM during a trial (recorded as failed; run again to resume).
    """
    try:
        import optuna
        import optuna_integration  # noqa: F401 - the pruning callback
    except ImportError as exc:
        raise SweepConfigError(
            f"cellgi sweep needs optuna and optuna-integration ({exc.name} is missing): pip install 'cellgi[sweep]'"
        ) from None
    base = load_spec(spec_path, list(overrides), checks=[check_memory])
    sweep = load_space(space) if space is not None else base.sweep
    if sweep is None:
        raise SweepConfigError(
            f"{spec_path}: no search space: add a sweep block to the spec or give --space FILE (docs/sweeps.md)"
        )
    if n_trials is not None:
        sweep = sweep.model_copy(update={"n_trials": n_trials})
    ck = base.training.checkpoint
    metric = sweep.metric or ck.monitor
    direction = sweep.direction or ("maximize" if ck.mode == "max" else "minimize")
    metric_key = metric.replace("/", ".")
    _check_space(spec_path, overrides, sweep)

    name = study_name or base.name
    url = storage or default_storage(runs_root, base.name)
    folder = Path(runs_root) / base.name / "sweeps" / name
    folder.mkdir(parents=True, exist_ok=True)
    console = console or Console(quiet=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(study_name=name, storage=_storage(url), sampler=_sampler(sweep),
                                    pruner=_pruner(sweep), direction=direction, load_if_exists=True)
    if study.direction.name.lower() != direction:
        raise SweepConfigError(
            f"study {name!r} in {url} was created to {study.direction.name.lower()}, this sweep asks to "
            f"{direction}: give another --study-name"
        )
    study.set_user_attr("metric", metric)
    has_val = base.data.split.has_validation

    def objective(trial: optuna.Trial) -> float:
        values = {k: _suggest(trial, k, p) for k, p in sweep.params.items()}
        # a sampled component type drops the old type's parameters by design: no note per trial
        spec = load_spec(spec_path, [*overrides, *trial_overrides(values)], notes=[], checks=[check_memory])
        spec = spec.model_copy(update={"sweep": None})
        run_dir = folder / f"trial_{trial.number:04d}"
        trial.set_user_attr("run_dir", str(run_dir))
        cbs = []
        if has_val and sweep.pruner.type != "none" and metric.startswith("val"):
            cbs.append(_pruning_callback(trial, metric))
        try:
            res = train_series(spec, run_dir=run_dir, progress=False, console=console, callbacks=cbs)
            for part in report(res):  # the trial's summary, as `cellgi train` prints it
                console.print(part)
        except TrainingInterrupted as exc:  # SIGINT/SIGTERM: Optuna records a KeyboardInterrupt as failed
            stopped.append(exc)
            raise KeyboardInterrupt from exc
        shown = {k: float(v) for k, v in res.metrics.items()
                 if k.split(".")[0] in ("val", "test") and not k.endswith((".n", ".n_strong"))}
        trial.set_user_attr("metrics", shown)
        for cb in cbs:
            if cb.pruned:
                raise optuna.TrialPruned(cb.pruned)
            cb.check_pruned()
        if metric_key not in res.metrics:
            raise SweepConfigError(f"metric {metric} was not logged by the run (its metrics: "
                                   f"{', '.join(sorted(shown)) or 'none'})")
        value = float(res.metrics[metric_key])
        return value if math.isfinite(value) else math.nan

    def after(study_: optuna.Study, frozen: FrozenTrial) -> None:
        if on_trial is not None:
            on_trial(_row(frozen, metric_key))

    stopped: list[BaseException] = []
    from optuna.storages import fail_stale_trials

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        fail_stale_trials(study)  # trials of a killed process whose heartbeat stopped: failed (and retried)
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    done = len(study.get_trials(deepcopy=False, states=finished))
    before = {t.number for t in study.get_trials(deepcopy=False)}
    missing = sweep.n_trials - done
    if missing > 0:
        from optuna.study import MaxTrialsCallback

        try:
            study.optimize(
                objective,
                n_trials=2 * missing,  # diverged trials are retried, at most as many again
                timeout=sweep.timeout,
                catch=(NonFiniteError,),
                callbacks=[MaxTrialsCallback(sweep.n_trials, states=finished), after],
            )
        except KeyboardInterrupt:
            if stopped:  # the trial is recorded as failed; the same command resumes the study
                raise stopped[0] from None
            raise
    trials = [_row(t, metric_key) for t in study.get_trials(deepcopy=False)]
    new = sum(1 for t in trials if t.number not in before)
    best_row = None
    best_spec = None
    complete = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
                if t.value is not None and math.isfinite(t.value)]
    if complete:
        bt = max(complete, key=lambda t: t.value) if direction == "maximize" else min(complete, key=lambda t: t.value)
        best_row = _row(bt, metric_key)
        spec = load_spec(spec_path, [*overrides, *trial_overrides(dict(bt.params))], notes=[], checks=[check_memory])
        best_spec = folder / "best.yaml"
        head = (f"# best trial {bt.number} of study {name!r} ({metric} = {bt.value:.6g}); "
                f"overrides: {' '.join(trial_overrides(dict(bt.params)))}\n")
        best_spec.write_text(head + dump_spec_yaml(spec.model_copy(update={"sweep": None})))
    table = folder / "trials.csv"
    _write_table(table, trials, list(sweep.params), metric)
    saved, skipped = _save_plots(study, folder / "plots") if plots else ([], {})
    return SweepResult(name, url, folder, metric, direction, trials, new, best_row, best_spec, table, saved, skipped)


def _check_space(spec_path: str | Path, overrides: Sequence[str], sweep: SweepSpec) -> None:
    """Every range end and choice must make a valid spec (one key at a time), before any trial runs."""
    for key, p in sweep.params.items():
        candidates = p.choices if p.type == "categorical" else [p.low, p.high]
        for v in candidates:
            load_spec(spec_path, [*overrides, *trial_overrides({key: v})], notes=[], checks=[check_memory])


def _write_table(path: Path, trials: list[TrialRow], keys: list[str], metric: str) -> None:
    metric_cols: list[str] = []
    for t in trials:
        metric_cols += [m for m in t.metrics if m not in metric_cols]
    cols = ["number", "state", metric, *keys, "seconds", *metric_cols, "run_dir"]
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for t in trials:
            w.writerow([t.number, t.state, "" if t.value is None else t.value,
                        *[t.params.get(k, "") for k in keys],
                        "" if t.seconds is None else round(t.seconds, 2),
                        *[t.metrics.get(m, "") for m in metric_cols], t.run_dir])


#: Optuna's matplotlib plots saved by a sweep (file stem -> function name)
PLOTS = {
    "optimization_history": "plot_optimization_history",
    "param_importances": "plot_param_importances",
    "slice": "plot_slice",
    "parallel_coordinate": "plot_parallel_coordinate",
    "intermediate_values": "plot_intermediate_values",
}


def _save_plots(study: optuna.Study, folder: Path) -> tuple[list[Path], dict[str, str]]:
    """Save each of :data:`PLOTS` as PNG; a plot the study cannot make yet (too few trials) is skipped
    with Optuna's reason."""
    from optuna.visualization import matplotlib as ovm  # optional (the module comment at the top)

    matplotlib.use("Agg", force=False)

    folder.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []
    skipped: dict[str, str] = {}
    for stem, fn in PLOTS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ax = getattr(ovm, fn)(study)
            except (ValueError, RuntimeError, ImportError, ZeroDivisionError) as exc:
                skipped[stem] = str(exc) or type(exc).__name__
                continue
        fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
        if not any(a.has_data() for a in fig.axes):
            skipped[stem] = "no finished trial to show yet"
            plt.close(fig)
            continue
        fig.set_size_inches(9, 6)
        path = folder / f"{stem}.png"
        fig.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(fig)
        saved.append(path)
    return saved, skipped
