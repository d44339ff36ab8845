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


def _table(tmp_path: Path, header: str, rows: list[str], name: str = "t.tsv") -> Path:
    p = tmp_path / name
    p.write_text("\n".join([header, *rows]) + "\n")
    return p


def test_two_same_named_target_columns_exit_2(run, tmp_path, capsys):
    data = _table(tmp_path, "genes\tgene_interaction\tgene_interaction", ["SYN0001;SYN0002\t0.1\t0.2"])
    assert main(["evaluate", str(run), "--data", str(data), "--format", "table"]) == 2
    err = capsys.readouterr().err
    assert f"{data}:1:" in err and "appears 2 times" in err and "columns 2 and 3" in err


def test_every_target_nan_exits_2(run, tmp_path, capsys):
    data = _table(tmp_path, "genes\tgene_interaction", ["SYN0001;SYN0002\tNA", "SYN0003;SYN0004\tnan"])
    assert main(["evaluate", str(run), "--data", str(data), "--format", "table"]) == 2
    err = capsys.readouterr().err
    assert "no sample" in err and "no measured target" in err


def test_rows_without_a_measured_target_are_skipped_and_counted(run, tmp_path):
    sets, ys = _test_samples(run)
    rows = [f"{';'.join(s)}\t{y:.8f}" for s, y in zip(sets, ys)] + ["SYN0001;SYN0002\t", "SYN0003;SYN0004\tNA"]
    data = _table(tmp_path, "genes\tgene_interaction", rows)
    out = tmp_path / "e.json"
    assert main(["evaluate", str(run), "--data", str(data), "--format", "table", "-o", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["n_samples"] == len(sets) == report["metrics"]["n"]
    assert report["skipped"]["no measured target"] == 2


def test_emap_layout_with_gene_columns_and_a_renamed_target(run, tmp_path):
    """The E-MAP layout (gene_a, gene_b, epsilon, ...; ../shared/data/yeast/interactions/emap_*.tsv)."""
    sets, ys = _test_samples(run)
    pairs = [(s, y) for s, y in zip(sets, ys) if len(s) == 2]
    header = "gene_a\tgene_b\tepsilon\tdouble_phenotype\texpected_phenotype\tn_measurements"
    rows = [f"{s[0]}\t{s[1]}\t{y:.8f}\t-1.0\t-1.5\t1" for s, y in pairs] + ["YFAKE01\tSYN0001\t0.5\t-1\t-1\t1"]
    data = _table(tmp_path, header, rows)
    out = tmp_path / "e.json"
    argv = ["evaluate", str(run), "--data", str(data), "--format", "table", "--gene-columns", "gene_a,gene_b",
            "--target-column", "gene_interaction=epsilon", "-o", str(out)]
    assert main(argv) == 0
    report = json.loads(out.read_text())
    assert report["n_samples"] == len(pairs) and report["n_unmapped"] == 1
    assert report["metrics"]["n"] == len(pairs)


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--target-column", "nosuch=epsilon"], "not a target of this model"),
        (["--target-column", "gene_interaction"], "NAME=COLUMN"),
        (["--target-column", "gene_interaction=nosuch"], "'nosuch' not in the header"),
    ],
)
def test_bad_table_options_exit_2(run, tmp_path, capsys, extra, words):
    data = _table(tmp_path, "gene_a\tgene_b\tepsilon", ["SYN0001\tSYN0002\t0.1"])
    argv = ["evaluate", str(run), "--data", str(data), "--format", "table", "--gene-columns", "gene_a,gene_b", *extra]
    assert main(argv) == 2
    assert words in capsys.readouterr().err


def test_output_pointing_at_a_folder_exits_2_before_work(run, tmp_path, capsys):
    data = _table(tmp_path, "genes\tgene_interaction", ["SYN0001;SYN0002\t0.1"])
    assert main(["evaluate", str(run), "--data", str(data), "--format", "table", "-o", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_unusable_device_exits_2(run, tmp_path, capsys):
    data = _table(tmp_path, "genes\tgene_interaction", ["SYN0001;SYN0002\t0.1"])
    assert main(["evaluate", str(run), "--data", str(data), "--format", "table", "--device", "cuda:99"]) == 2
    assert "not usable here" in capsys.readouterr().err
    assert main(["predict", str(run), "--genes", str(data), "-o", str(tmp_path / "o.tsv"), "--device", "cuda:99"]) == 2
    assert "--device cuda:99" in capsys.readouterr().err
