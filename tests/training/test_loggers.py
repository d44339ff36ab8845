"""Experiment loggers from training.loggers (offline W&B, local MLflow store), early stopping."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from rich.console import Console

from cellgi.spec import load_spec
from cellgi.training.loggers import flat_spec
from cellgi.training.runner import TrainerConfigError, train
from cellgi.runfolder.runs import read_json

from tiny_specs import write_tiny_spec


def _spec(tmp_path, extra: str, epochs: int = 1):
    text = write_tiny_spec(tmp_path, epochs=epochs).read_text() + "  baseline: {enabled: false}\n" + extra
    (tmp_path / "s.yaml").write_text(text)
    return load_spec(tmp_path / "s.yaml")


def _console(tmp_path) -> Console:
    return Console(file=open(tmp_path / "out.txt", "w"), soft_wrap=True)


def test_flat_spec_keys():
    assert flat_spec({"a": {"b": 1, "c": [1, 2]}, "d": None}) == {"a.b": 1, "a.c": [1, 2], "d": None}


def test_wandb_offline_and_mlflow_file_store(tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="the wandb extra is not installed (pip install 'cellgi[wandb]')")
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed (pip install 'cellgi[mlflow]')")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_home"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb_cache"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb_config"))
    spec = _spec(tmp_path, "  loggers:\n    - {type: tensorboard}\n    - {type: wandb, project: cellgi-test, offline: true}\n"
                           "    - {type: mlflow, experiment_name: cellgi-test}\n")
    run = tmp_path / "run"
    train(spec, run_dir=run, progress=False, console=_console(tmp_path))
    assert read_json(run / "run.json")["status"] == "completed"
    # CSV always, with the flattened spec as hyperparameters
    hp = (run / "logs" / "csv" / "version_0" / "hparams.yaml").read_text()
    assert "training.optimizer.lr" in hp and "model.hidden_dim" in hp
    # W&B offline run folder with the run's history
    offline = list((run / "logs" / "wandb").glob("offline-run-*"))
    assert offline and any(offline[0].rglob("*.wandb"))
    # MLflow file store in the run folder: params, metrics and the plots as artifacts
    store = run / "logs" / "mlruns"
    params = {p.name for p in store.rglob("params/*")}
    assert "training.optimizer.lr" in params
    assert any(store.rglob("metrics/val/pearson")) or any(store.rglob("metrics/val"))
    assert any(store.rglob("artifacts/plots/test_scatter.png"))
    # TensorBoard got the figures too
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ev = EventAccumulator(str(next((run / "logs" / "tensorboard").glob("version_*")))).Reload()
    assert "plots/test_scatter" in ev.Tags()["images"]


def test_missing_logger_package_is_a_clear_error_before_any_data(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    spec = _spec(tmp_path, "  loggers: [{type: mlflow}]\n")
    with pytest.raises(TrainerConfigError, match=r"training.loggers\[0\].*pip install 'cellgi\[mlflow\]'"):
        train(spec, run_dir=tmp_path / "run", progress=False, console=_console(tmp_path))
    assert not (tmp_path / "run").exists()


def test_early_stopping_from_the_spec(tmp_path):
    # min_delta larger than any possible change of a correlation: never an improvement
    spec = _spec(tmp_path, "  early_stopping: {monitor: val/pearson, patience: 1, mode: max, min_delta: 5.0}\n", epochs=6)
    result = train(spec, run_dir=tmp_path / "run", progress=False, console=_console(tmp_path))
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert int(last["epoch"]) == 1 and result.epochs == 2  # epoch 1 set the reference, epoch 2 did not beat it
    assert "early stopping" in (tmp_path / "out.txt").read_text()


def test_early_stopping_on_val_without_a_val_split_is_refused(tmp_path):
    text = write_tiny_spec(tmp_path).read_text().replace("[0.8, 0.1, 0.1]", "[0.9, 0.0, 0.1]")
    text += "  early_stopping: {monitor: val/loss, mode: min}\n"
    (tmp_path / "s.yaml").write_text(text)
    with pytest.raises(TrainerConfigError, match="needs a validation split"):
        train(load_spec(tmp_path / "s.yaml"), run_dir=tmp_path / "run", progress=False, console=_console(tmp_path))
