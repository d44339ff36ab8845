import numpy as np
import pytest
import torch

from cellgi.data.cellgraph import CellGraph, DuplicateEdgeError, EdgeType, normalize_edges


def test_undirected_stored_both_ways_once_self_loops_dropped():
    ei = torch.tensor([[0, 1, 2, 2, 1], [1, 0, 3, 2, 0]])
    g = CellGraph.from_edges(["a", "b", "c", "d"], [("u", ei, False)])
    pairs = set(map(tuple, g.edge_index("u").t().tolist()))
    assert pairs == {(0, 1), (1, 0), (2, 3), (3, 2)}
    assert g.edge_types["u"].num_pairs == 2


def test_self_loop_keep_and_directed():
    ei = torch.tensor([[0, 1, 1], [1, 0, 1]])
    g = CellGraph.from_edges(["a", "b"], [("d", ei, True)], self_loops="keep")
    assert sorted(map(tuple, g.edge_index("d").t().tolist())) == [(0, 1), (1, 0), (1, 1)]


def test_weights_merge_max_mean_and_error():
    s, d, w = np.array([0, 0, 1]), np.array([1, 1, 2]), np.array([0.2, 0.6, 1.0])
    ei, ew, st = normalize_edges(s, d, 3, directed=True, weight=w, duplicates="merge_max")
    assert st.duplicates_merged == 1 and ew.tolist() == pytest.approx([0.6, 1.0])
    _, ew, _ = normalize_edges(s, d, 3, directed=True, weight=w, duplicates="merge_mean")
    assert ew.tolist() == pytest.approx([0.4, 1.0])
    with pytest.raises(DuplicateEdgeError) as exc:
        normalize_edges(s, d, 3, directed=True, weight=w, duplicates="error")
    assert exc.value.row == 1


def test_reverse_listing_is_not_a_duplicate():
    _, _, st = normalize_edges([0, 1], [1, 0], 2, directed=False, duplicates="error")
    assert st.reverse_merged == 1 and st.duplicates_merged == 0


def test_degrees_follow_the_edges():
    ei = torch.tensor([[0, 2], [1, 1]])
    g = CellGraph.from_edges(["a", "b", "c"], [("r", ei, True, torch.tensor([0.5, 2.0]))])
    assert g.degree("r").tolist() == [0, 2, 0]
    assert g.degree("r", direction="out").tolist() == [1, 0, 1]


def test_errors():
    with pytest.raises(ValueError, match="duplicates"):
        CellGraph(["a", "a"])
    with pytest.raises(ValueError, match="out of range"):
        CellGraph(["a"], {"x": EdgeType("x", True, torch.tensor([[0], [3]]))})
    g = CellGraph(["a"])
    with pytest.raises(KeyError, match="no edge type"):
        g.edge_index("nope")
    with pytest.raises(KeyError, match="not in the graph"):
        g.index_of(["a", "zz"])


def test_hetero_data_and_state_roundtrip():
    ei = torch.tensor([[0, 1], [1, 2]])
    g = CellGraph.from_edges(["a", "b", "c"], [("u", ei, False, torch.tensor([0.1, 0.9])), ("d", ei, True)])
    h = g.to_hetero_data()
    assert h["gene"].num_nodes == 3
    assert torch.equal(h["gene", "u", "gene"].edge_index, g.edge_index("u"))
    back = CellGraph.from_hetero_data(h)
    st = CellGraph.from_state_dict(g.state_dict())
    for other in (back, st):
        assert other.genes == g.genes
        for n in g.edge_types:
            assert torch.equal(other.edge_index(n), g.edge_index(n))
            assert other.edge_types[n].directed == g.edge_types[n].directed
    assert torch.allclose(st.edge_weight("u"), g.edge_weight("u"))
