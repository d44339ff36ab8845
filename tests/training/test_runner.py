"""Run reliability: signals, moved folders, exact resume, atomic claim, edited specs, full disk, tiny splits."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
from pathlib import Path

import pytest
from lightning.pytorch.callbacks import Callback
from rich.console import Console

from cellgi.cli.main import main
from cellgi.spec import load_spec
from cellgi.runfolder.checkpoint import read_checkpoint
from cellgi.training.runner import TrainingInterrupted, measured_sizes, train
from cellgi.runfolder.runs import LOCK_FILE, RunDirError, RunWriteError, claim_run_dir, read_json

from tiny_specs import write_tiny_spec


class _SignalAt(Callback):
    """Sends ``sig`` to this process in the middle of epoch ``epoch``."""

    def __init__(self, sig: int, epoch: int):
        self.sig, self.epoch = sig, epoch

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.current_epoch == self.epoch and batch_idx == 2:
            os.kill(os.getpid(), self.sig)


def _spec_file(folder: Path, epochs: int = 2) -> Path:
    """The tiny spec without baselines (not what these tests are about; they cost CPU time)."""
    p = write_tiny_spec(folder, epochs=epochs)
    p.write_text(p.read_text() + "  baseline: {enabled: false}\n")
    return p


def _quiet(tmp: Path) -> Console:
    return Console(file=open(tmp / "console.txt", "a"), soft_wrap=True)


@pytest.fixture(scope="module")
def three_epochs(tmp_path_factory):
    """An uninterrupted 3-epoch run (the reference of an exact resume)."""
    base = tmp_path_factory.mktemp("ref")
    spec = load_spec(_spec_file(base, epochs=3))
    return train(spec, run_dir=base / "run", progress=False, console=_quiet(base))


def test_sigterm_marks_interrupted_and_a_moved_folder_resumes_exactly(tmp_path, three_epochs):
    spec = load_spec(_spec_file(tmp_path, epochs=3))
    run = tmp_path / "run"
    with pytest.raises(TrainingInterrupted) as info:
        train(spec, run_dir=run, progress=False, console=_quiet(tmp_path), callbacks=[_SignalAt(signal.SIGTERM, 1)])
    assert info.value.exit_code == 143 and info.value.run_dir == run
    status = read_json(run / "run.json")
    assert status["status"] == "interrupted" and status["signal"] == "SIGTERM"
    assert not (run / LOCK_FILE).exists() and not (run / "metrics.json").exists()
    assert int(read_checkpoint(run / "checkpoints" / "last.ckpt")["epoch"]) == 0
    moved = tmp_path / "elsewhere" / "moved"
    moved.parent.mkdir()
    shutil.move(str(run), str(moved))  # the original location is gone: nothing may point there
    result = train(resume=moved, progress=False, console=_quiet(tmp_path))
    assert result.best_checkpoint.parent == moved / "checkpoints"
    assert read_json(moved / "run.json")["best_checkpoint"] == "checkpoints/best.ckpt"
    # the resumed run equals the uninterrupted one (data order, RNG, optimiser and best tracking restored)
    for k in ("test.pearson", "test.mse", "val.pearson"):
        assert result.metrics[k] == pytest.approx(three_epochs.metrics[k], rel=1e-5, abs=1e-7), k
    st = read_checkpoint(moved / "checkpoints" / "last.ckpt")
    ckpt_state = next(v for k, v in st["callbacks"].items() if "val/pearson" in k)
    assert ckpt_state["best_model_path"] == "checkpoints/best.ckpt" and ckpt_state["dirpath"] == "checkpoints"


def test_sigint_is_exit_130_and_cli_maps_interrupts(tmp_path, monkeypatch, capsys):
    spec = load_spec(_spec_file(tmp_path, epochs=2))
    with pytest.raises(TrainingInterrupted) as info:
        train(spec, run_dir=tmp_path / "run", progress=False, console=_quiet(tmp_path),
              callbacks=[_SignalAt(signal.SIGINT, 0)])
    assert info.value.exit_code == 130
    assert read_json(tmp_path / "run" / "run.json")["status"] == "interrupted"

    def stopped(*a, **k):
        raise TrainingInterrupted(signal.SIGTERM, tmp_path / "run")

    monkeypatch.setattr("cellgi.training.runner.train", stopped)
    assert main(["train", str(tmp_path / "tiny.yaml"), "--run-dir", str(tmp_path / "x")]) == 143
    assert "SIGTERM" in capsys.readouterr().err


def test_resume_of_a_complete_run_says_so(tiny_run, tmp_path, capsys):
    run = tmp_path / "copy"
    shutil.copytree(tiny_run, run)
    before = (run / "checkpoints" / "last.ckpt").read_bytes()
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "is complete" in out and "epoch 3" not in out
    assert (run / "checkpoints" / "last.ckpt").read_bytes() == before


def _unfinished_copy(tiny_run: Path, dest: Path) -> Path:
    shutil.copytree(tiny_run, dest)
    status = read_json(dest / "run.json")
    status["status"] = "interrupted"
    (dest / "run.json").write_text(json.dumps(status))
    return dest


def test_resume_refuses_an_edited_spec(tiny_run, tmp_path, capsys):
    run = _unfinished_copy(tiny_run, tmp_path / "copy")
    text = (run / "spec.yaml").read_text()
    (run / "spec.yaml").write_text(text.replace("hidden_dim: 16", "hidden_dim: 32"))
    assert main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert "was edited after the run started" in err and "model.hidden_dim" in err


def test_resume_refuses_a_foreign_checkpoint(tiny_run, tmp_path, capsys):
    run = _unfinished_copy(tiny_run, tmp_path / "copy")
    status = read_json(run / "run.json")
    status["run_id"] = "0" * 32
    (run / "run.json").write_text(json.dumps(status))
    assert main(["train", "--resume", str(run)]) == 2
    assert "belongs to another run" in capsys.readouterr().err


def test_second_writer_fails_at_once_before_reading_data(tmp_path, monkeypatch):
    spec = load_spec(_spec_file(tmp_path))
    d = tmp_path / "run"
    d.mkdir()
    claim_run_dir(d)  # another (live) process holds the folder

    def no_data(*a, **k):
        raise AssertionError("data was read")

    monkeypatch.setattr("cellgi.training.runner.build_data", no_data)
    with pytest.raises(RunDirError, match="in use by another cellgi process"):
        train(spec, run_dir=d, progress=False, console=_quiet(tmp_path))
    assert [p.name for p in d.iterdir()] == [LOCK_FILE]
    # a lock left by a dead process is taken over
    (d / LOCK_FILE).write_text(f"{os.uname().nodename} 999999999\n")
    claim_run_dir(d)
    assert (d / LOCK_FILE).read_text().split()[1] == str(os.getpid())


def test_full_disk_is_a_clear_error_and_keeps_earlier_checkpoints(tmp_path, monkeypatch, capsys):
    import cellgi.runfolder.checkpoint as ck

    real = ck.atomic_torch_save
    calls = {"n": 0}

    def filling(obj, path):
        calls["n"] += 1
        if calls["n"] > 2:  # epoch 1's best and last were written; the disk is full from then on
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(obj, path)

    monkeypatch.setattr(ck, "atomic_torch_save", filling)
    spec_file = _spec_file(tmp_path, epochs=3)
    run = tmp_path / "run"
    assert main(["train", str(spec_file), "--run-dir", str(run), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "no space left on device" in err and "--resume" in err and "Traceback" not in err
    assert read_json(run / "run.json")["status"] == "failed"
    assert int(read_checkpoint(run / "checkpoints" / "last.ckpt")["epoch"]) == 0  # intact
    assert not list((run / "checkpoints").glob(".*.tmp"))


def test_one_sample_test_split_completes(tmp_path):
    text = _spec_file(tmp_path).read_text()
    text = text.replace("num_samples: 500", "num_samples: 200").replace("[0.8, 0.1, 0.1]", "[0.895, 0.1, 0.005]")
    (tmp_path / "one.yaml").write_text(text)
    result = train(load_spec(tmp_path / "one.yaml"), run_dir=tmp_path / "run", progress=False,
                   console=_quiet(tmp_path))
    assert result.metrics["test.n"] == 1 and result.metrics["test.pearson"] != result.metrics["test.pearson"]
    assert read_json(tmp_path / "run" / "run.json")["status"] == "completed"
    assert (tmp_path / "run" / "plots" / "test_scatter.png").is_file()


def test_rows_without_a_measured_target_are_not_samples(tmp_path):
    from cellgi.data.build import build_data

    bundle = build_data(load_spec(write_tiny_spec(tmp_path)).data, progress=False, cache=False)
    before = measured_sizes(bundle)
    assert before == {k: int(v.numel()) for k, v in bundle.splits.items()}
    bundle.dataset.y[bundle.splits["test"][:5]] = float("nan")
    after = measured_sizes(bundle)
    assert after["test"] == before["test"] - 5 and after["train"] == before["train"]


def test_write_error_names_the_file_and_the_cause(tmp_path):
    from cellgi.runfolder.runs import write_error

    err = write_error(tmp_path / "metrics.json", OSError(errno.ENOSPC, "No space left on device"))
    assert isinstance(err, RunWriteError) and "metrics.json" in str(err) and "no space left" in str(err)
    assert err.exit_code == 1


def test_resume_with_dropout_is_exact(tmp_path):
    """Dropout masks after a resume equal the uninterrupted run's: the saved generator state is applied when
    training starts, after the sanity check's validation loader has drawn its seed."""
    spec = load_spec(_spec_file(tmp_path, epochs=3), ["model.preprocessor.dropout=0.3"])
    ref = train(spec, run_dir=tmp_path / "ref", progress=False, console=_quiet(tmp_path))
    run = tmp_path / "run"
    with pytest.raises(TrainingInterrupted):
        train(spec, run_dir=run, progress=False, console=_quiet(tmp_path), callbacks=[_SignalAt(signal.SIGTERM, 1)])
    result = train(resume=run, progress=False, console=_quiet(tmp_path))
    for k in ("test.pearson", "test.mse", "val.pearson"):
        assert result.metrics[k] == ref.metrics[k], k

