"""Resume after kill -9: training continues from the last checkpoint, no epoch lost or repeated."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cellgi.cli.main import main
from cellgi.runfolder.runs import read_json

from tiny_specs import write_tiny_spec

MAX_EPOCHS = 6
STEPS_PER_EPOCH = 13  # ceil(400 training samples / batch 32)


def _epochs_logged(run: Path, version: int) -> list[int]:
    f = run / "logs" / "csv" / f"version_{version}" / "metrics.csv"
    if not f.is_file():
        return []
    return sorted({int(r["epoch"]) for r in csv.DictReader(open(f)) if r.get("val/pearson")})


def _last_epoch(run: Path) -> int:
    return int(torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["epoch"])


@pytest.mark.slow
def test_kill_9_then_resume_continues(tmp_path, capsys):
    spec = write_tiny_spec(tmp_path, epochs=MAX_EPOCHS)
    run = tmp_path / "run"
    env = dict(os.environ, CELLGI_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "cellgi", "train", str(spec), "--run-dir", str(run), "--no-progress"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )
    ckpt = run / "checkpoints" / "last.ckpt"
    deadline = time.time() + 240
    try:
        while time.time() < deadline and proc.poll() is None:
            if ckpt.is_file():
                try:
                    if _last_epoch(run) >= 1:  # two epochs done: kill it mid-run
                        break
                except Exception:  # noqa: BLE001 - never happens with atomic writes; retry anyway
                    pass
            time.sleep(0.02)
        assert proc.poll() is None, "training finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "metrics.json").exists()
    assert read_json(run / "run.json")["status"] == "running"  # killed: never got to say otherwise
    k = _last_epoch(run)  # last checkpoint that survived the kill (a complete file)
    assert 1 <= k < MAX_EPOCHS - 1

    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"epochs completed: {k + 1}" in out and "the spec is taken from" in out
    state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert int(state["epoch"]) == MAX_EPOCHS - 1
    assert int(state["global_step"]) == MAX_EPOCHS * STEPS_PER_EPOCH  # nothing lost, nothing repeated
    resumed = _epochs_logged(run, 1)
    assert resumed[0] == k + 1 and resumed[-1] == MAX_EPOCHS - 1
    assert set(_epochs_logged(run, 0)) | set(resumed) == set(range(MAX_EPOCHS))
    info = read_json(run / "run.json")
    assert info["status"] == "completed" and len(info["resumes"]) == 1
    assert "test.pearson" in json.loads((run / "metrics.json").read_text())


@pytest.mark.slow
def test_resume_reports_ignored_spec_values_and_refuses_damage(tiny_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(tiny_run, run)
    status = json.loads((run / "run.json").read_text())
    status["status"] = "interrupted"  # a complete run would only say it is complete
    (run / "run.json").write_text(json.dumps(status))
    other = write_tiny_spec(tmp_path, epochs=5, aggregator="cross_attention")
    assert main(["train", str(other), "--resume", str(run), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "ignored" in out and "training.max_epochs: given 5, the run keeps 2" in out
    (run / "run.json").write_text(json.dumps(status))  # interrupted again: the resume reads last.ckpt
    ckpt = run / "checkpoints" / "last.ckpt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    assert main(["train", "--resume", str(run)]) == 2
    assert "last.ckpt" in capsys.readouterr().err


def test_resume_needs_a_run_folder(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "not a cellgi run folder" in capsys.readouterr().err
