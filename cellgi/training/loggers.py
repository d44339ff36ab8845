"""Experiment loggers of a run from ``training.loggers`` (Lightning's loggers).

The CSV log (``logs/csv/version_N/metrics.csv``) is always written: the learning-curve plot reads it.
``tensorboard`` writes ``logs/tensorboard/version_N``; ``wandb`` and ``mlflow`` need their extras
(``pip install 'cellgi[wandb]'``, ``pip install 'cellgi[mlflow]'``): a spec naming one whose package is
missing fails before any data is read, naming the spec key and the install command.

:func:`log_spec` sends the flattened spec (``training.optimizer.lr`` ...) to every logger's
``log_hyperparams``; :func:`log_figure` sends a matplotlib figure to the loggers that take figures.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any, Sequence

from lightning.pytorch.loggers import CSVLogger, Logger, MLFlowLogger, TensorBoardLogger, WandbLogger
from matplotlib.figure import Figure

from cellgi.spec import Spec
from cellgi.spec.training import LoggerSpec

__all__ = ["LoggerConfigError", "build_loggers", "check_loggers", "flat_spec", "log_figure", "log_spec"]

#: extra of the optional loggers: type -> (python package, pip extra)
_EXTRAS = {"wandb": ("wandb", "wandb"), "mlflow": ("mlflow", "mlflow")}


class LoggerConfigError(Exception):
    """A ``training.loggers`` entry that cannot be used here (its package is not installed, ...)."""


def check_loggers(specs: Sequence[LoggerSpec]) -> None:
    """Raise :class:`LoggerConfigError` for a logger whose optional package is not installed."""
    for i, ls in enumerate(specs):
        need = _EXTRAS.get(ls.type)
        if need and importlib.util.find_spec(need[0]) is None:
            raise LoggerConfigError(
                f"training.loggers[{i}]: the {ls.type} logger needs the '{need[0]}' package, which is not "
                f"installed: pip install 'cellgi[{need[1]}]'"
            )


def build_loggers(specs: Sequence[LoggerSpec], log_dir: str | Path, run_name: str) -> list[Logger]:
    """The CSV logger first (always), then one logger per ``training.loggers`` entry (a second ``csv``
    entry is the same logger)."""
    check_loggers(specs)
    log_dir = Path(log_dir)
    loggers: list[Logger] = [CSVLogger(save_dir=str(log_dir), name="csv")]
    for ls in specs:
        if ls.type == "csv":
            continue
        if ls.type == "tensorboard":
            loggers.append(TensorBoardLogger(save_dir=str(log_dir), name="tensorboard", default_hp_metric=False))
        elif ls.type == "wandb":
            loggers.append(WandbLogger(
                project=ls.project, entity=ls.entity, name=ls.name or run_name, tags=list(ls.tags) or None,
                offline=ls.offline, save_dir=str(log_dir), log_model=False,
            ))
        elif ls.type == "mlflow":
            uri = ls.tracking_uri
            if uri is None:  # a file store in the run folder (MLflow 3 asks for an explicit opt-in)
                uri = (log_dir / "mlruns").resolve().as_uri()
                os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            loggers.append(MLFlowLogger(
                experiment_name=ls.experiment_name, run_name=ls.run_name or run_name, tracking_uri=uri,
                tags=dict(ls.tags) or None, log_model=False,
            ))
        else:  # pragma: no cover - the spec union lists every type
            raise LoggerConfigError(f"unknown logger type {ls.type!r}")
    return loggers


def flat_spec(d: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists kept as values)."""
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(flat_spec(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: d}


def log_spec(loggers: Sequence[Logger], spec: Spec) -> None:
    """The flattened spec as hyperparameters (lists and None as strings, which every logger takes)."""
    flat = {k: (v if isinstance(v, (int, float, str, bool)) else str(v))
            for k, v in flat_spec(spec.model_dump(mode="json")).items()}
    for lg in loggers:
        lg.log_hyperparams(flat)


def log_figure(loggers: Sequence[Logger], name: str, fig: Figure, step: int = 0) -> None:
    """Send a matplotlib figure to TensorBoard (``add_figure``), W&B (an image) and MLflow (an artifact)."""
    for lg in loggers:
        if isinstance(lg, TensorBoardLogger):
            lg.experiment.add_figure(f"plots/{name}", fig, global_step=step, close=False)
        elif isinstance(lg, WandbLogger):
            import wandb  # optional (the wandb extra): only a W&B logger, which needs it, gets here

            lg.experiment.log({f"plots/{name}": wandb.Image(fig)})
        elif isinstance(lg, MLFlowLogger):
            lg.experiment.log_figure(lg.run_id, fig, f"plots/{name}.png")
