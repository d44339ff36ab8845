"""``cellgi evaluate``: metrics on a new file, genes mapped with the run's mapper, skipped rows counted."""

from __future__ import annotations

import json
import os
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


def _read_tsv(path: Path) -> tuple[list[str], list[list[str]]]:
    lines = path.read_text().splitlines()
    return lines[0].split("\t"), [line.split("\t") for line in lines[1:]]


def test_predictions_are_every_evaluated_row_in_input_order(run, tmp_path, capsys):
    """--predictions: the input's gene columns with names, the measured target and the prediction, one row
    per evaluated input row in input order (skipped rows are not written); the metrics agree with them."""
    sets, ys = _test_samples(run)
    pairs = [(s, y) for s, y in zip(sets, ys) if len(s) == 2]
    rows = [f"{s[1]}\tx\t{s[0].lower()}\t{y:.8f}" for s, y in pairs]
    rows.insert(3, "YFAKE01\tx\tSYN0001\t0.5")  # skipped: unknown gene
    rows.insert(5, f"{pairs[0][0][0]}\tx\t{pairs[0][0][1]}\t")  # skipped: no measured target
    data = _table(tmp_path, "gene_b\tnote\tgene_a\tepsilon", rows)
    pred_out, out = tmp_path / "rows.tsv", tmp_path / "e.json"
    argv = ["evaluate", str(run), "--data", str(data), "--format", "table", "--gene-columns", "gene_a,gene_b",
            "--target-column", "gene_interaction=epsilon", "--predictions", str(pred_out), "-o", str(out),
            "--batch-size", "7"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    report = json.loads(out.read_text())
    header, body = _read_tsv(pred_out)
    assert header == ["gene_a", "gene_a_name", "gene_b", "gene_b_name", "gene_interaction", "prediction"]
    assert len(body) == report["n_samples"] == len(pairs)
    assert [(r[0], r[2]) for r in body] == [(s[0].lower(), s[1]) for s, _ in pairs]  # as written, in order
    assert [r[1] for r in body] == [s[0] for s, _ in pairs]  # synthetic genes have no standard name: the ORF
    assert [float(r[4]) for r in body] == pytest.approx([y for _, y in pairs], abs=1e-6)
    from scipy.stats import pearsonr

    r = pearsonr([float(x[5]) for x in body], [float(x[4]) for x in body]).statistic
    assert report["metrics"]["pearson"] == pytest.approx(r, abs=1e-5)
    # every row read is accounted for: evaluated plus skipped by reason
    assert report["n_rows"] == len(rows) == report["n_samples"] + sum(report["skipped"].values())
    assert f"{len(pairs)} samples evaluated of {len(rows)} rows read; 2 skipped" in text
    assert f"wrote {len(pairs)} rows to {pred_out}" in text


def test_predictions_of_a_genes_column_and_kuzmin_file(run, tmp_path):
    sets, ys = _test_samples(run)
    data = _table(tmp_path, "genes\tgene_interaction", [f"{';'.join(s)}\t{y:.8f}" for s, y in zip(sets, ys)])
    pred_out = tmp_path / "rows.tsv"
    assert main(["evaluate", str(run), "--data", str(data), "--format", "table", "--predictions", str(pred_out)]) == 0
    header, body = _read_tsv(pred_out)
    assert header == ["genes", "genes_name", "gene_interaction", "prediction"]
    assert [r[0] for r in body] == [";".join(s) for s in sets] and [r[1] for r in body] == [";".join(s) for s in sets]
    head = "Query Strain ID\tArray Strain ID\tAdjusted genetic interaction score (epsilon or tau)\n"
    kz = tmp_path / "k.tsv"
    kz.write_text(head + "".join(
        (f"{s[0]}+{s[1]}_tm1" if len(s) == 3 else f"{s[0]}+YDL227C_tm1") + f"\t{s[-1]}_dma1\t{y:.8f}\n"
        for s, y in zip(sets, ys)))
    assert main(["evaluate", str(run), "--data", str(kz), "--predictions", str(pred_out)]) == 0
    header, body = _read_tsv(pred_out)
    assert header[:4] == ["Query Strain ID", "Query Strain ID_name", "Array Strain ID", "Array Strain ID_name"]
    assert len(body) == len(sets) and body[0][2] == f"{sets[0][-1]}_dma1" and body[0][3] == sets[0][-1]
    # the neutral marker has no entry in the synthetic gene list: its name is empty
    digenic = next(r for r, s in zip(body, sets) if len(s) == 2)
    assert digenic[1].endswith("+")


def test_unwritable_predictions_path_is_one_line_before_work(run, tmp_path, capsys):
    data = _table(tmp_path, "genes\tgene_interaction", ["SYN0001;SYN0002\t0.1"])
    for bad, words in ((tmp_path / "nofolder" / "p.tsv", "does not exist"), (tmp_path, "is a folder"),
                       (data, "would overwrite the input")):
        argv = ["evaluate", str(tmp_path / "not-a-run"), "--data", str(data), "--format", "table",
                "--predictions", str(bad)]
        assert main(argv) == 2  # before the (missing) run is even opened
        err = capsys.readouterr().err
        assert words in err and "--predictions" in err and len(err.strip().splitlines()) == 1
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if not os.access(ro, os.W_OK):  # root may write anywhere
            argv = ["evaluate", str(run), "--data", str(data), "--format", "table", "--predictions", str(ro / "p.tsv")]
            assert main(argv) == 2
            assert "not writable" in capsys.readouterr().err
    finally:
        ro.chmod(0o700)
