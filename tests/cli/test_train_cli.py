"""``cellgi train``: validation before data, run folder, no overwrite, one real subprocess run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cellgi.cli.main import main

from tiny_specs import tiny_spec

TINY = tiny_spec("tiny-cli")


def test_invalid_spec_exits_2_before_reading_data(tmp_path, capsys):
    spec = tmp_path / "bad.yaml"
    spec.write_text(
        "name: bad\ndata:\n  graphs: [{name: p, format: edgelist, path: missing.txt}]\n"
        "  screens: [{format: kuzmin, path: missing.tsv}]\ntraining:\n  max_epochs: '2'\n"
    )
    assert main(["train", str(spec), "--runs-root", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert f"{spec}:6: training.max_epochs" in err and "missing.txt" not in err
    assert not (tmp_path / "runs").exists()


def test_bad_trainer_settings_fail_before_data_and_folder(tmp_path, capsys):
    spec = tmp_path / "t.yaml"
    spec.write_text(TINY.replace("trainer: {accelerator: cpu, devices: 1}", "trainer: {accelerator: cpu, devices: 1, precision: '99-wrong'}"))
    assert main(["train", str(spec), "--runs-root", str(tmp_path / "runs"), "--no-progress"]) == 2
    assert "training.trainer" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_train_in_process_and_refuse_overwrite(tmp_path, capsys):
    spec = tmp_path / "t.yaml"
    spec.write_text(TINY)
    run = tmp_path / "run"
    assert main(["train", str(spec), "--run-dir", str(run), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "additive test" in out and "additive baseline" in out  # the summary table and verdict
    metrics = json.loads((run / "metrics.json").read_text())
    assert "test.pearson" in metrics and "baseline_additive.test.pearson" in metrics
    assert "baseline_features.test.pearson" in metrics and "the features baseline (" in out  # one verdict each
    assert main(["train", str(spec), "--run-dir", str(run), "--no-progress"]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err


def test_timestamped_run_folder(tmp_path, capsys):
    spec = tmp_path / "t.yaml"
    spec.write_text(TINY)
    assert main(["train", str(spec), "--runs-root", str(tmp_path / "runs"), "--no-progress"]) == 0
    (run,) = list((tmp_path / "runs" / "tiny-cli").iterdir())
    assert len(run.name) == 15 and run.name[8] == "-"  # YYYYmmdd-HHMMSS
    assert (run / "checkpoints" / "last.ckpt").is_file()


def test_needs_spec_or_resume(capsys):
    assert main(["train"]) == 2
    assert "--resume" in capsys.readouterr().err


@pytest.mark.slow
def test_real_subprocess_run(tmp_path):
    spec = tmp_path / "t.yaml"
    spec.write_text(TINY)
    env = dict(os.environ, CELLGI_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.run(
        [sys.executable, "-m", "cellgi", "train", str(spec), "--run-dir", str(tmp_path / "run")],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "test pearson" in proc.stdout
    assert (tmp_path / "run" / "model.pt").is_file()
    header = Path(tmp_path / "run" / "spec.yaml").read_text().splitlines()[:6]
    assert any("command: cellgi train" in ln for ln in header)
