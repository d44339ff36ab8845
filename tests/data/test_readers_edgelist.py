import pytest

from cellgi.data.errors import DataError
from cellgi.data.readers import read_edge_table, read_edgelist, read_regulatory, read_sgd_features


def test_real_plain_edgelists(yeast_dir):
    phys = read_edgelist(yeast_dir / "networks" / "other" / "physical_krogan2006.txt")
    assert phys.num_rows == 7075 and phys.weight is None
    coex = read_edgelist(yeast_dir / "networks" / "other" / "coexpression_hu2007.txt", weighted=True)
    assert coex.num_rows == 14826 and coex.weight is not None


def test_real_regulatory_maps_common_names(yeast_dir):
    raw = read_regulatory(yeast_dir / "networks" / "other" / "regulatory_2010.tsv")
    assert raw.num_rows == 48082
    m = read_sgd_features(yeast_dir / "genes" / "SGD_features.tab").mapper()
    assert m.map("Abf1") == "YKL112W" and m.map("YKL112w") == "YKL112W"
    mapped = sum(m.index(n) >= 0 for n in raw.names)
    assert mapped / len(raw.names) > 0.9


def test_edgelist_bad(tmp_path):
    f = tmp_path / "e.txt"
    f.write_text("A B\nA B 0.3\n")
    with pytest.raises(DataError, match=r"e.txt:2: expected 2 fields, found 3 \(set weighted"):
        read_edgelist(f)
    f.write_text("A B nan?\n")
    with pytest.raises(DataError, match=r"e.txt:1: weight"):
        read_edgelist(f, weighted=True)
    f.write_text("# only a comment\n")
    with pytest.raises(DataError, match="no edges"):
        read_edgelist(f)


def test_regulatory_header_and_bad_row(tmp_path):
    f = tmp_path / "r.tsv"
    f.write_text("TF\tTarget\nAbf1\tYKL112w\nGcn4\n")
    with pytest.raises(DataError, match=r"r.tsv:3"):
        read_regulatory(f)
    f.write_text("TF\tTarget\nAbf1\tYKL112w\n")
    assert read_regulatory(f).num_rows == 1


def test_edge_table_csv_tsv(tmp_path):
    f = tmp_path / "e.csv"
    f.write_text("Source,Target,Score\nYAL001C,YAL002W,0.5\nYAL002W,YAL003W,0.7\n")
    raw = read_edge_table(f, "source", "TARGET", "score")
    assert raw.num_rows == 2 and raw.weight.tolist() == [0.5, 0.7]
    with pytest.raises(DataError, match="weight column 'w' not in the header"):
        read_edge_table(f, "source", "target", "w")
    f.write_text("Source,Target\nYAL001C\n")
    with pytest.raises(DataError, match=r"e.csv:2: expected 2 fields"):
        read_edge_table(f, "source", "target")


def test_edge_table_parquet(tmp_path, monkeypatch):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    f = tmp_path / "e.parquet"
    pd.DataFrame({"a": ["YAL001C"], "b": ["YAL002W"]}).to_parquet(f)
    assert read_edge_table(f, "a", "b").num_rows == 1


def test_edge_table_parquet_without_pandas(tmp_path, monkeypatch):
    import sys

    f = tmp_path / "e.parquet"
    f.write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(DataError, match="needs pandas"):
        read_edge_table(f, "a", "b")
