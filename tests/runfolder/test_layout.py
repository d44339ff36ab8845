"""What a path is (`kind_of`): read from the folder's file names alone."""

from __future__ import annotations

from cellgi.runfolder.layout import PathKind, is_run_folder, is_series_folder, is_stacked_folder, kind_of
from cellgi.runfolder.runs import MODEL_FILE, REPLICATES_FILE, STACK_FILE


def test_kind_of_names_each_layout(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")  # names only: no file is read
    series = tmp_path / "series"
    series.mkdir()
    (series / REPLICATES_FILE).write_text("{}")
    stacked = tmp_path / "stacked"
    stacked.mkdir()
    (stacked / MODEL_FILE).write_bytes(b"")
    (stacked / STACK_FILE).write_bytes(b"")
    other = tmp_path / "other"
    other.mkdir()
    assert kind_of(run) == PathKind.RUN and is_run_folder(run)
    assert kind_of(run / "checkpoints" / "last.ckpt") == PathKind.CHECKPOINT
    assert kind_of(series) == PathKind.SERIES and is_series_folder(series) and not is_run_folder(series)
    assert kind_of(stacked) == PathKind.STACKED and is_stacked_folder(stacked) and is_run_folder(stacked)
    assert kind_of(other) == PathKind.OTHER_FOLDER
    assert kind_of(tmp_path / "gone") == PathKind.MISSING
    assert kind_of(str(tmp_path / "gone.ckpt")) == PathKind.MISSING


def test_a_shipped_spec_name_is_a_pretrained_name_unless_a_path_is_there(tmp_path, monkeypatch):
    assert kind_of("quickstart") == PathKind.PRETRAINED  # built or not: the loader says which
    assert kind_of("no_such_spec_name") == PathKind.MISSING
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quickstart").mkdir()
    assert kind_of("quickstart") == PathKind.OTHER_FOLDER  # an existing path wins over a name
