import numpy as np
import pytest

from cellgi.data.errors import DataError
from cellgi.data.genes import GeneMapper, UnmappedLog
from cellgi.data.graphs import load_graph, map_edges
from cellgi.data.readers import read_edgelist
from cellgi.spec.data import graph_entry


def test_map_edges_counts_rows_per_identifier(tmp_path):
    f = tmp_path / "e.txt"
    f.write_text("A B\nA X\nX Y\nX X\nY B\nB C\n")
    raw = read_edgelist(f)
    log = UnmappedLog("e")
    s, d, kept = map_edges(raw, GeneMapper(["A", "B", "C"]), log)
    assert kept.tolist() == [0, 5] and s.tolist() == [0, 1] and d.tolist() == [1, 2]
    assert dict(log.rows) == {"X": 3, "Y": 2}  # X X counts once
    assert log.first_line == {"X": 2, "Y": 3}


def test_load_graph_policies(tmp_path):
    f = tmp_path / "e.txt"
    f.write_text("A B 0.2\nB A 0.9\nA A 1.0\nB C 0.05\nA B 0.4\n")
    mapper = GeneMapper(["A", "B", "C"])
    spec = graph_entry(dict(name="w", format="edgelist", path="e.txt", weighted=True, min_weight=0.1))
    et, log, rep = load_graph(spec, tmp_path, mapper)
    assert rep["below_min_weight"] == 1 and rep["self_loops_dropped"] == 1
    assert rep["duplicates_merged"] == 1 and rep["reverse_merged"] == 1
    assert et.num_edges == 2 and np.allclose(et.edge_weight.numpy(), [0.9, 0.9])
    spec = graph_entry(dict(name="w", format="edgelist", path="e.txt", weighted=True, duplicates="error"))
    with pytest.raises(DataError, match=r"e.txt:5: .*repeated edge"):
        load_graph(spec, tmp_path, mapper)
    nope = graph_entry(dict(name="w", format="edgelist", path="e.txt", weighted=True))
    with pytest.raises(DataError, match="no edge left"):
        load_graph(nope, tmp_path, GeneMapper(["Q"]))
    unweighted = graph_entry(dict(name="w", format="edgelist", path="g.txt", min_weight=0.5))
    (tmp_path / "g.txt").write_text("A B\n")
    with pytest.raises(DataError, match="min_weight is set but the file has no weights"):
        load_graph(unweighted, tmp_path, mapper)
