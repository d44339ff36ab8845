"""Outputs that cannot be written: one line naming the path and the reason, exit 2, before any work;
``predict --overwrite`` keeps the old file until the new one is complete (docs/reliability.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cellgi.cli.main import main

#: a folder nothing can be created in, even by root (sysfs)
READ_ONLY = Path("/sys")


def _bad_outputs(tmp_path: Path) -> list[tuple[Path, str]]:
    afile = tmp_path / "afile"
    afile.write_text("x\n")
    out = [(afile / "out.tsv", "is a file, not a folder"), (tmp_path / "missing" / "out.tsv", "does not exist")]
    if READ_ONLY.is_dir():
        out.append((READ_ONLY / "cellgi-out.tsv", "cannot write in folder"))
    return out


@pytest.mark.parametrize("command", ["predict", "screen", "embed", "evaluate"])
def test_an_output_that_cannot_be_written_is_one_line_before_any_work(tmp_path, capsys, command):
    genes = tmp_path / "sets.txt"
    genes.write_text("A;B\n")
    # the model path does not exist: an error about it would mean the output was checked too late
    model = str(tmp_path / "no-such-run")
    for out, why in _bad_outputs(tmp_path):
        args = {
            "predict": ["predict", model, "--genes", str(genes), "-o", str(out)],
            "screen": ["screen", model, "--query", "A", "-o", str(out)],
            "embed": ["embed", model, "-o", str(out)],
            "evaluate": ["evaluate", model, "--data", str(genes), "-o", str(out)],
        }[command]
        assert main(args) == 2, (command, out)
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(out) in err and why in err, err
        assert "no-such-run" not in err and "Traceback" not in err


def test_spec_example_and_schema_outputs_that_cannot_be_written(tmp_path, capsys):
    for out, why in _bad_outputs(tmp_path):
        for args in (["spec", "example", "quickstart", "-o", str(out)], ["spec", "schema", "-o", str(out)]):
            assert main(args) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and str(out) in err and why in err, err


def test_train_runs_root_that_cannot_be_written_fails_before_data(tmp_path, capsys, monkeypatch):
    from tiny_specs import write_tiny_spec

    spec = write_tiny_spec(tmp_path)

    def no_data(*a, **k):
        raise AssertionError("data read before the runs root was checked")

    monkeypatch.setattr("cellgi.training.runner.build_data", no_data)
    for root, why in _bad_outputs(tmp_path):
        if why == "does not exist":  # a missing folder is created: only the other cases fail
            continue
        for flag in ("--runs-root", "--run-dir"):
            assert main(["train", str(spec), flag, str(root / "r") if flag == "--run-dir" else str(root)]) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and flag in err and why in err and "Traceback" not in err, err


def test_a_write_error_nobody_foresaw_is_one_line(tmp_path, capsys, monkeypatch):
    import errno

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x.yaml"))

    monkeypatch.setattr("cellgi.cli.spec.write_text_atomic", full)  # where the command looks it up
    assert main(["spec", "example", "quickstart", "-o", str(tmp_path / "x.yaml")]) == 1
    err = capsys.readouterr().err
    assert err == f"error: {tmp_path / 'x.yaml'}: no space left on device\n"


def test_predict_overwrite_keeps_the_old_file_until_the_new_one_is_complete(run, tmp_path, capsys, monkeypatch):
    import cellgi.apps.predict as cli_predict
    from cellgi.cli._common import Terminated

    sets = tmp_path / "sets.txt"
    sets.write_text("SYN0001;SYN0002\nSYN0003;SYN0004\n")
    out = tmp_path / "out.tsv"
    out.write_text("the old predictions\n")
    real = cli_predict.predict_file

    def stopped_half_way(loaded, genes, output, **kw):
        Path(output).write_text("line\tinput\n1\tSYN0001;SYN")  # a part of the new file, then SIGTERM
        raise Terminated()

    monkeypatch.setattr(cli_predict, "predict_file", stopped_half_way)
    assert main(["predict", str(run), "--genes", str(sets), "-o", str(out), "--overwrite", "--no-progress"]) == 143
    assert out.read_text() == "the old predictions\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tsv", "sets.txt"]  # no partial file left
    assert "left as it was" in capsys.readouterr().err
    monkeypatch.setattr(cli_predict, "predict_file", real)
    assert main(["predict", str(run), "--genes", str(sets), "-o", str(out), "--overwrite", "--no-progress"]) == 0
    assert out.read_text().startswith("line\t") and len(out.read_text().splitlines()) == 3
