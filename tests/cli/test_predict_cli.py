"""``cellgi predict``: gene sets in, predictions out; unknown genes skipped and reported (or --strict)."""

from __future__ import annotations

import csv
import shutil

import torch

from cellgi.cli.main import main

from tiny_specs import tiny_spec
from cellgi.train.checkpoint import load_model

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
    from cellgi.cli.predict import predict_gene_sets

    loaded = load_model(run)
    ref = predict_gene_sets(loaded, [[0, 1], [2, 3, 4], [9, 10]])
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
