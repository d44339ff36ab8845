import math

import numpy as np
import pytest

from cellgi.data.errors import DataError
from cellgi.data.genes import GeneMapper
from cellgi.data.readers import read_kuzmin, read_screen_table
from cellgi.data.screens import load_screen, map_screen

HEAD = ("Query strain ID\tArray Strain ID\tAdjusted genetic interaction score (epsilon or tau)\tP-value\t"
        "Double/triple mutant fitness\tDouble/triple mutant fitness standard deviation\n")


def test_real_dev_screen(yeast_dir):
    raw = read_kuzmin(yeast_dir / "interactions" / "kuzmin_format_screen_dev.tsv", weight_from_pvalue=True)
    assert raw.num_rows == 7225
    sizes = np.diff(raw.ptr)
    assert set(sizes.tolist()) == {2, 3}
    assert "YDL227C" not in {raw.names[g] for g in raw.genes}
    assert 0.1 <= raw.weight.min() and raw.weight.max() <= 10
    assert np.isfinite(raw.targets["gene_interaction"]).all() and np.isfinite(raw.targets["fitness"]).all()


def _screen(tmp_path, rows, head=HEAD):
    f = tmp_path / "s.tsv"
    f.write_text(head + "".join(r + "\n" for r in rows))
    return f


def test_kuzmin_digenic_trigenic_and_case_insensitive_header(tmp_path):
    f = _screen(tmp_path, [
        "YAL015C+YDL227C_tm461\tYBL007C_dma91\t0.0167\t0.3\t0.97\t0.02",
        "YAL015C+YAL002W_tm1\tYBL007C_dma91\t-0.2\t0.001\t0.5\t0.02",
        "YAL015C+YDL227C_tm461\tYAL015C_dma1\t0.1\t0.3\t0.9\t0.02",
        "YAL015C+YAL002W_tm1\tYBL021C_x\t\t0.3\tNA\t0.1",
    ], HEAD.replace("Query strain ID", "QUERY STRAIN id"))
    raw = read_kuzmin(f, weight_from_pvalue=True)
    assert raw.num_rows == 2
    assert [raw.names[g] for g in raw.genes[raw.ptr[0]:raw.ptr[1]]] == ["YAL015C", "YBL007C"]
    assert [raw.names[g] for g in raw.genes[raw.ptr[1]:raw.ptr[2]]] == ["YAL015C", "YAL002W", "YBL007C"]
    assert raw.filtered == {"gene repeated in sample": 1, "no measured target": 1}
    assert raw.weight[1] == pytest.approx(3.0)
    only_tri = read_kuzmin(f, kinds=["trigenic"])
    assert only_tri.num_rows == 1 and only_tri.filtered["kind filter"] == 2


def test_kuzmin_bad_inputs(tmp_path):
    f = _screen(tmp_path, ["A+B_x\tC_y\tnot-a-number\t0.1\t0.9\t0.1"])
    with pytest.raises(DataError, match=r"s.tsv:2: .*not a (finite )?number"):
        read_kuzmin(f)
    f = _screen(tmp_path, ["A+B_x\tC_y\t0.1"])
    with pytest.raises(DataError, match=r"s.tsv:2: expected 6 fields"):
        read_kuzmin(f)
    f = _screen(tmp_path, [], "Query\tArray\tscore\n")
    with pytest.raises(DataError, match="no query strain column"):
        read_kuzmin(f)


def test_map_screen_unmapped_counted_and_duplicates(tmp_path):
    f = _screen(tmp_path, [
        "A+YDL227C_x\tB_y\t0.1\t0.5\t0.9\t0.1",
        "A+YDL227C_x\tB_z\t0.3\t0.5\t0.9\t0.1",
        "A+YDL227C_x\tZZZ_y\t0.1\t0.5\t0.9\t0.1",
        "QQQ+YDL227C_x\tZZZ_y\t0.1\t0.5\t0.9\t0.1",
        "A+C_x\tB_y\t0.2\t0.5\t0.9\t0.1",
    ])
    mapper = GeneMapper(["A", "B", "C"])
    load = load_screen({"format": "kuzmin", "path": str(f), "duplicates": "mean"}, mapper, ["gene_interaction"])
    assert load.n_rows == 5 and load.n_unmapped == 2
    assert load.reasons["all genes unmapped"] == 1 and load.reasons["unknown identifier"] == 1
    assert load.unmapped.rows["ZZZ"] == 2 and load.unmapped.rows["QQQ"] == 1
    assert len(load.dataset) == 2 and load.duplicates.rows == 1
    assert load.dataset.y[0, 0].item() == pytest.approx(0.2)
    assert load.dataset.kind_counts() == {"digenic": 1, "trigenic": 1, "other": 0}
    with pytest.raises(DataError, match="line 3 repeats line 2"):
        load_screen({"format": "kuzmin", "path": str(f), "duplicates": "error"}, mapper, ["gene_interaction"])
    keep = load_screen({"format": "kuzmin", "path": str(f), "duplicates": "keep_all"}, mapper, ["fitness", "other"])
    assert len(keep.dataset) == 3 and keep.missing_targets == ["other"]
    assert math.isnan(keep.dataset.y[0, 1].item())


def test_screen_table_gene_columns_and_genes_column(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text("g1,g2,g3,eps,split,w\nA,B,,0.1,train,1\nA,B,C,0.2,TEST,2\nA,A,,0.3,val,1\n")
    raw = read_screen_table(f, {"gene_interaction": "eps"}, gene_columns=["g1", "g2", "g3"],
                            split_column="split", weight_column="w")
    assert raw.num_rows == 2 and raw.split.tolist() == [0, 2] and raw.weight.tolist() == [1, 2]
    assert raw.filtered["gene repeated in sample"] == 1
    f2 = tmp_path / "t.tsv"
    f2.write_text("genes\ttau\nYAL015C;YBL007C;YAL002W\t-0.1\n")
    raw2 = read_screen_table(f2, {"gene_interaction": "tau"}, genes_column="genes")
    assert [raw2.names[g] for g in raw2.genes] == ["YAL015C", "YBL007C", "YAL002W"]
    f.write_text("g1,g2,eps,split\nA,B,0.1,holdout\n")
    with pytest.raises(DataError, match=r"t.csv:2: split value 'holdout'"):
        read_screen_table(f, {"gene_interaction": "eps"}, gene_columns=["g1", "g2"], split_column="split")
    m = map_screen(raw2, GeneMapper(["YAL015C", "YBL007C", "YAL002W"]), ["gene_interaction"])
    assert m.dataset.kind_counts()["trigenic"] == 1


def test_strain_table_and_non_utf8(tmp_path):
    from cellgi.data.readers import read_strain_table

    st = tmp_path / "strains.tsv"
    st.write_text("Strain\tOrf\tCommon\tAllele\nodd_q1\tYAL001C+YDL227C\tTFC3\tx\narr_7\tYBL007C\tSLA1\ty\n")
    f = _screen(tmp_path, ["odd_q1\tarr_7\t0.1\t0.5\t0.9\t0.1"])
    raw = read_kuzmin(f, strains=read_strain_table(st))
    assert [raw.names[g] for g in raw.genes] == ["YAL001C", "YBL007C"]
    bad = tmp_path / "latin1.tsv"
    bad.write_bytes(HEAD.encode() + "A+B_x\tC_y\t0.1\t0.5\t0.9\t0.1\n".encode() + b"\xe9\xff\n")
    with pytest.raises(DataError, match=r"latin1.tsv:3: not UTF-8"):
        read_kuzmin(bad)


def test_screen_table_parquet(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    f = tmp_path / "s.parquet"
    pd.DataFrame({"genes": ["A;B", "A;B;C"], "eps": [0.1, None]}).to_parquet(f)
    raw = read_screen_table(f, {"gene_interaction": "eps"}, genes_column="genes")
    assert raw.num_rows == 1 and raw.filtered["no measured target"] == 1
    assert raw.line.tolist() == [2]
