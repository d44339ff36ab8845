"""``cellgi evaluate``: metrics on a new file, genes mapped with the run's mapper, skipped rows counted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cellgi.cli.main import main

from tiny_specs import tiny_spec
from cellgi.data.splits import load_splits

TINY = tiny_spec("tiny-eval")



def _test_samples(run: Path):
    from cellgi.data.build import build_data
    from cellgi.spec import load_spec

    spec = load_spec(run / "spec.yaml")
    bundle = build_data(spec.data, progress=False, cache=False)
    idx = load_splits(run / "splits.npz")["test"]
    genes = bundle.graph.genes
    sets = [[genes[int(g)] for g in bundle.dataset.genes_of(int(i))] for i in idx]
    return sets, bundle.dataset.y[idx, 0].tolist()


def test_kuzmin_file_with_an_unknown_gene(run, tmp_path, capsys):
    sets, ys = _test_samples(run)
    head = "Query Strain ID\tArray Strain ID\tAdjusted genetic interaction score (epsilon or tau)\tP-value\n"
    rows = []
    for s, y in zip(sets, ys):
        query = f"{s[0]}+{s[1]}_tm1" if len(s) == 3 else f"{s[0]}+YDL227C_tm1"
        rows.append(f"{query}\t{s[-1]}_dma1\t{y:.8f}\t0.01\n")
    rows.append(f"YFAKE01+YDL227C_tm2\t{sets[0][0]}_dma1\t0.1\t0.01\n")
    data = tmp_path / "screen.tsv"
    data.write_text(head + "".join(rows))
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(run), "--data", str(data), "--format", "kuzmin", "-o", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["n_samples"] == len(sets) and report["n_unmapped"] == 1
    assert report["unmapped_identifiers"][0]["id"] == "YFAKE01"
    assert report["unmapped_identifiers"][0]["reason"] == "unknown identifier"
    stored = json.loads((run / "metrics.json").read_text())
    assert report["metrics"]["pearson"] == pytest.approx(stored["test.pearson"], abs=1e-5)
    assert report["metrics"]["n"] == stored["test.n"]
    assert "samples evaluated" in capsys.readouterr().out


def test_table_file_and_case_variants(run, tmp_path):
    sets, ys = _test_samples(run)
    lines = ["genes\tgene_interaction"] + [f"{';'.join(g.lower() for g in s)}\t{y:.8f}" for s, y in zip(sets, ys)]
    lines.append("NOPE1;NOPE2\t0.3")
    data = tmp_path / "t.tsv"
    data.write_text("\n".join(lines) + "\n")
    out = tmp_path / "e.json"
    assert main(["evaluate", str(run / "checkpoints" / "best.ckpt"), "--data", str(data), "--format", "table",
                 "-o", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["n_samples"] == len(sets) and report["n_unmapped"] == 1
    assert report["skipped"] == {"all genes unmapped": 1}


def test_bad_inputs_exit_2(run, tmp_path, capsys):
    bad = tmp_path / "x.ckpt"
    bad.write_bytes(b"garbage")
    assert main(["evaluate", str(bad), "--data", str(tmp_path / "nothing.tsv")]) == 2
    assert "x.ckpt" in capsys.readouterr().err
    only_unknown = tmp_path / "u.tsv"
    only_unknown.write_text("genes\tgene_interaction\nNOPE1;NOPE2\t0.3\n")
    assert main(["evaluate", str(run), "--data", str(only_unknown), "--format", "table"]) == 2
    assert "no sample" in capsys.readouterr().err
