"""Run folders: layout, spec header, no overwrite, metrics.json, logs and plots."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from cellgi import __version__
from cellgi.data.splits import load_splits
from cellgi.spec import load_spec
from cellgi.runfolder.runs import RunDirError, create_run_dir, read_json, write_json

from tiny_specs import write_tiny_spec


def test_run_folder_layout(tiny_run: Path):
    for rel in ("spec.yaml", "run.json", "data_report.json", "splits.npz", "checkpoints/last.ckpt",
                "checkpoints/best.ckpt", "model.pt", "metrics.json", "logs/csv/version_0/metrics.csv",
                "plots/test_scatter.png", "plots/learning_curves.png", "plots/aggregation_weights.png"):
        assert (tiny_run / rel).is_file(), rel
    assert any((tiny_run / "logs" / "tensorboard" / "version_0").glob("events.out.tfevents.*"))
    assert read_json(tiny_run / "run.json")["status"] == "completed"
    assert (tiny_run / "plots" / "test_scatter.png").read_bytes()[:4] == b"\x89PNG"


def test_spec_header_and_round_trip(tiny_run: Path):
    text = (tiny_run / "spec.yaml").read_text()
    header = [ln for ln in text.splitlines() if ln.startswith("#")]
    joined = "\n".join(header)
    assert f"cellgi {__version__}" in joined and "plugins:" in joined
    for word in ("torch ", "torch_geometric ", "lightning ", "seed 0", "split random 0.8/0.1/0.1 seed 0"):
        assert word in joined, word
    spec = load_spec(tiny_run / "spec.yaml")  # the saved spec is itself a valid spec
    assert spec.model.aggregator.type == "cross_attention" and spec.training.max_epochs == 2
    assert Path(spec.data.root).is_absolute()


def test_metrics_json_has_model_and_baseline_keys(tiny_run: Path):
    m = json.loads((tiny_run / "metrics.json").read_text())
    for stage in ("train", "val", "test"):
        for k in ("pearson", "spearman", "mse", "mae", "strong_pearson", "strong_auroc", "strong_auprc"):
            assert f"{stage}.{k}" in m and f"baseline_additive.{stage}.{k}" in m
    splits = load_splits(tiny_run / "splits.npz")
    assert m["test.n"] == m["baseline_additive.test.n"] == splits["test"].numel()
    assert -1 <= m["test.pearson"] <= 1 and m["test.mse"] > 0


def test_csv_log_has_one_row_of_metrics_per_epoch(tiny_run: Path):
    import csv

    rows = list(csv.DictReader(open(tiny_run / "logs/csv/version_0/metrics.csv")))
    epochs = sorted({int(r["epoch"]) for r in rows if r.get("val/pearson")})
    assert epochs == [0, 1]
    assert any(r.get("train/samples_per_s") for r in rows)


def test_refuses_to_overwrite(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    (d / "something").write_text("x")
    with pytest.raises(RunDirError, match="refusing to overwrite"):
        create_run_dir("x", run_dir=d)
    a = create_run_dir("x", runs_root=tmp_path / "runs")
    b = create_run_dir("x", runs_root=tmp_path / "runs")  # same second: suffixed, not reused
    assert a != b and a.parent == b.parent == tmp_path / "runs" / "x"


def test_write_json_turns_nan_into_null(tmp_path):
    write_json(tmp_path / "m.json", {"a": float("nan"), "b": [1.0, math.inf], "c": 2.5})
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": None, "b": [1.0, None], "c": 2.5}


def test_train_refuses_existing_run_dir_before_reading_data(tmp_path):
    from rich.console import Console

    from cellgi.training.runner import train

    spec = load_spec(write_tiny_spec(tmp_path))
    d = tmp_path / "taken"
    d.mkdir()
    (d / "spec.yaml").write_text("name: other\n")
    with pytest.raises(RunDirError):
        train(spec, run_dir=d, progress=False, console=Console(quiet=True))
    assert (d / "spec.yaml").read_text() == "name: other\n"
    assert sorted(p.name for p in d.iterdir()) == ["spec.yaml"]
