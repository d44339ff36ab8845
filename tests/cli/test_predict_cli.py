"""``cellgi predict``: gene sets in, predictions out; unknown genes skipped and reported (or --strict)."""

from __future__ import annotations

import csv
import shutil

import pytest
import torch

from cellgi.cli.main import main

from tiny_specs import tiny_spec
from cellgi.predictors import load_predictor

TINY = tiny_spec("tiny-predict")



GENES = """\
# a comment and a blank line are ignored

SYN0001;SYN0002
syn0003 ; SYN0004 ; SYN0005
SYN0001;NOTAGENE
SYN0007;SYN0007
SYN0010;SYN0011
"""


def test_predict_skips_and_reports_unknown_lines(run, tmp_path, capsys):
    inp = tmp_path / "sets.txt"
    inp.write_text(GENES)
    out = tmp_path / "out.tsv"
    assert main(["predict", str(run), "--genes", str(inp), "-o", str(out)]) == 0
    cap = capsys.readouterr()
    assert ":5: skipped 'SYN0001;NOTAGENE': NOTAGENE: unknown identifier" in cap.err
    assert ":6: skipped" in cap.err and "named twice" in cap.err
    assert "skipped 2 line(s)" in cap.out
    rows = list(csv.DictReader(open(out), delimiter="\t"))
    assert [r["line"] for r in rows] == ["3", "4", "7"]
    assert rows[1]["genes"] == "SYN0003;SYN0004;SYN0005"
    assert {"gene_interaction", "local_gene_interaction", "global_gene_interaction", "gate_local", "gate_global"} <= set(rows[0])
    # the numbers are the model's predictions for those sets
    from cellgi.apps.predict import predict_sets

    loaded = load_predictor(run)
    ref = predict_sets(loaded, [[0, 1], [2, 3, 4], [9, 10]])
    got = torch.tensor([float(r["gene_interaction"]) for r in rows])
    assert torch.allclose(got, ref["pred"][:, 0], rtol=1e-5, atol=1e-7)


def test_strict_refuses_and_writes_nothing(run, tmp_path, capsys):
    inp = tmp_path / "sets.txt"
    inp.write_text(GENES)
    out = tmp_path / "out.tsv"
    assert main(["predict", str(run), "--genes", str(inp), "-o", str(out), "--strict"]) == 2
    assert "--strict" in capsys.readouterr().err
    assert not out.exists()


def test_predict_from_a_lone_checkpoint(run, tmp_path):
    lone = tmp_path / "elsewhere" / "model.ckpt"
    lone.parent.mkdir()
    shutil.copy(run / "checkpoints" / "best.ckpt", lone)
    inp = tmp_path / "sets.txt"
    inp.write_text("SYN0001;SYN0002\n")
    out = tmp_path / "o.tsv"
    assert main(["predict", str(lone), "--genes", str(inp), "-o", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 2


def _sets_file(tmp_path, n: int = 40, name: str = "many.txt"):
    p = tmp_path / name
    p.write_text("".join(f"SYN{1 + i % 190:04d};SYN{2 + (7 * i) % 190:04d}\n" for i in range(n)))
    return p


def _rows(path):
    return list(csv.DictReader(open(path), delimiter="\t"))


def test_interrupted_predict_keeps_batches_and_resume_completes(run, tmp_path, monkeypatch, capsys):
    import cellgi.apps.predict as lib

    inp = _sets_file(tmp_path)
    ref = tmp_path / "ref.tsv"
    assert main(["predict", str(run), "--genes", str(inp), "-o", str(ref), "--no-progress"]) == 0
    out = tmp_path / "out.tsv"
    real, calls = lib.predict_sets, []

    def interrupt_third(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(lib, "predict_sets", interrupt_third)
    assert main(["predict", str(run), "--genes", str(inp), "-o", str(out), "--batch-size", "8", "--no-progress"]) == 130
    assert "--resume" in capsys.readouterr().err
    assert [r["line"] for r in _rows(out)] == [str(i) for i in range(1, 17)]  # two finished batches kept
    with open(out, "a") as fh:
        fh.write("17\tSYN0017;SYN")  # a row cut short by a kill
    monkeypatch.setattr(lib, "predict_sets", real)
    assert main(["predict", str(run), "--genes", str(inp), "-o", str(out), "--resume", "--no-progress"]) == 0
    assert "after the 16 already there" in capsys.readouterr().out
    got, want = _rows(out), _rows(ref)  # nothing lost, nothing written twice
    assert [(r["line"], r["input"], r["genes"]) for r in got] == [(r["line"], r["input"], r["genes"]) for r in want]
    for g, w in zip(got, want):  # batch composition changes float rounding only
        assert float(g["gene_interaction"]) == pytest.approx(float(w["gene_interaction"]), rel=1e-4, abs=1e-6)


def test_sigterm_exits_143_and_keeps_rows(run, tmp_path, monkeypatch, capsys):
    import os
    import signal

    import cellgi.apps.predict as lib

    inp = _sets_file(tmp_path, 30)
    out = tmp_path / "out.tsv"
    real, calls = lib.predict_sets, []

    def term_second(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*a, **k)

    monkeypatch.setattr(lib, "predict_sets", term_second)
    assert main(["predict", str(run), "--genes", str(inp), "-o", str(out), "--batch-size", "10", "--no-progress"]) == 143
    assert len(_rows(out)) == 10
    assert signal.getsignal(signal.SIGTERM) is not None and "interrupted" in capsys.readouterr().err


def test_existing_output_needs_resume_or_overwrite(run, tmp_path, capsys):
    inp = _sets_file(tmp_path, 5)
    out = tmp_path / "o.tsv"
    out.write_text("keep me\n")
    assert main(["predict", str(run), "--genes", str(inp), "-o", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err and out.read_text() == "keep me\n"
    assert main(["predict", str(run), "--genes", str(inp), "-o", str(out), "--resume"]) == 2
    # no record of what made it (OUT.predict.json): refused, untouched
    assert "missing or unreadable" in capsys.readouterr().err and out.read_text() == "keep me\n"
    assert main(["predict", str(run), "--genes", str(inp), "-o", str(out), "--overwrite", "--no-progress"]) == 0
    assert len(_rows(out)) == 5


def test_output_folder_or_missing_parent_exit_2(run, tmp_path, capsys):
    inp = _sets_file(tmp_path, 2)
    assert main(["predict", str(run), "--genes", str(inp), "-o", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["predict", str(run), "--genes", str(inp), "-o", str(tmp_path / "no" / "o.tsv")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_set_sizes_the_model_never_saw_are_counted_and_warned(run, tmp_path, capsys):
    ten = ";".join(f"SYN{i:04d}" for i in range(20, 30))
    inp = tmp_path / "sizes.txt"
    inp.write_text(f"SYN0001\nSYN0001;SYN0002\n{ten}\nSYN0003\nSYN0004;SYN0005;SYN0006\n")
    out = tmp_path / "o.tsv"
    assert main(["predict", str(run), "--genes", str(inp), "-o", str(out), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "3 gene set(s) have a size the model was not trained on (trained on sets of 2-3 genes)" in err
    assert "2 with 1 gene, 1 with 10 genes" in err and "line 1" in err
    assert len(_rows(out)) == 5  # predicted all the same, in input order


def test_resume_refuses_another_model_or_input_and_names_what_differs(run, tmp_path, capsys):
    """A partial output resumed with another model, another --genes file, or without its record is
    refused (exit 2, nothing appended); the record names the model's and the input's digests."""
    import json

    from cli_helpers import train_tiny_run

    inp = _sets_file(tmp_path, 40)
    out = tmp_path / "out.tsv"
    assert main(["predict", str(run), "--genes", str(inp), "-o", str(out), "--no-progress"]) == 0
    record = json.loads((tmp_path / "out.predict.json").read_text())
    assert record["model"]["digest"].startswith("sha256:") and record["input"]["digest"].startswith("sha256:")
    rows = out.read_text().splitlines()
    out.write_text("\n".join(rows[:20]) + "\n")  # an interrupted output: 19 rows
    capsys.readouterr()

    (tmp_path / "other").mkdir()
    other_run = train_tiny_run(tmp_path / "other", "tiny-other")  # another model (other weights)
    assert main(["predict", str(other_run), "--genes", str(inp), "-o", str(out), "--resume", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "cannot resume" in err and "model: the rows come from" in err and "input" not in err.split("model:")[1]
    assert len(out.read_text().splitlines()) == 20  # nothing appended

    other_inp = tmp_path / "other_sets.txt"
    other_inp.write_text("".join(f"SYN{i:04d};SYN{i + 1:04d}\n" for i in range(100, 140)))
    assert main(["predict", str(run), "--genes", str(other_inp), "-o", str(out), "--resume", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "input: the rows come from" in err and str(inp) in err and "model:" not in err
    assert len(out.read_text().splitlines()) == 20

    (tmp_path / "out.predict.json").unlink()
    assert main(["predict", str(run), "--genes", str(inp), "-o", str(out), "--resume", "--no-progress"]) == 2
    assert "missing or unreadable" in capsys.readouterr().err

    # the same model and input: resumed, every row once
    (tmp_path / "out.predict.json").write_text(json.dumps(record))
    assert main(["predict", str(run), "--genes", str(inp), "-o", str(out), "--resume", "--no-progress"]) == 0
    assert [r["line"] for r in _rows(out)] == [str(i) for i in range(1, 41)]


def test_rows_carry_the_standard_names(run, tmp_path):
    """The `names` column beside the ORFs (RAD52 beside YML032C), from the checkpoint's mapper."""
    from dataclasses import replace

    from cellgi.data.genes import GeneMapper
    from cellgi.apps.predict import predict_file

    loaded = load_predictor(run)
    genes = list(loaded.mapper.genes)
    mapper = GeneMapper(genes, names={"RAD52": genes[0], "NTG1": genes[1]})
    fake = replace(loaded, mapper=mapper)
    inp = tmp_path / "s.txt"
    inp.write_text(f"rad52;{genes[1]}\n{genes[2]};{genes[3]}\n")
    predict_file(fake, inp, tmp_path / "o.tsv")
    rows = _rows(tmp_path / "o.tsv")
    assert (rows[0]["genes"], rows[0]["names"]) == (f"{genes[0]};{genes[1]}", "RAD52;NTG1")
    assert rows[1]["names"] == f"{genes[2]};{genes[3]}"  # no standard name: the ORF itself
