"""PairRelations: per-graph adjacency, weight, shared neighbours and Jaccard of the deleted genes' pairs."""

from __future__ import annotations

import torch

from cellgi.data.cellgraph import CellGraph, EdgeType
from cellgi.nn.relations import RELATION_FEATURES, PairRelations


def _graph():
    # undirected weighted: 0-1 (0.5), 0-2 (0.9), 1-2 (0.2), 2-3 (1.0); directed: 0 -> 3, 4 -> 0, 4 -> 3
    und = torch.tensor([[0, 1, 0, 2, 1, 2, 2, 3], [1, 0, 2, 0, 2, 1, 3, 2]])
    w = torch.tensor([0.5, 0.5, 0.9, 0.9, 0.2, 0.2, 1.0, 1.0])
    dirc = torch.tensor([[0, 4, 4], [3, 0, 3]])
    return CellGraph([f"G{i}" for i in range(5)], {"u": EdgeType("u", False, und, w), "d": EdgeType("d", True, dirc)})


def test_relations_match_hand_counts():
    rel = PairRelations(_graph(), ["u", "d"])
    assert rel.num_features == 8 and rel.feature_names[:4] == [f"{f}.u" for f in RELATION_FEATURES]
    padded = torch.tensor([[0, 1, 3], [3, 0, 0]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    r = rel(padded, mask)
    assert r.shape == (2, 3, 3, 8)
    # sample 0, pair (0, 1) in u: adjacent, weight 0.5, shared neighbour {2}, union {0,1,2} minus... N(0)={1,2}, N(1)={0,2}
    torch.testing.assert_close(r[0, 0, 1, :4], torch.tensor([1.0, 0.5, torch.log1p(torch.tensor(1.0)), 1 / 3]))
    # pair (0, 3) in u: not adjacent, shared {2}; N(0)={1,2}, N(3)={2}: Jaccard 1/2
    torch.testing.assert_close(r[0, 0, 2, :4], torch.tensor([0.0, 0.0, torch.log1p(torch.tensor(1.0)), 0.5]))
    # pair (0, 3) in d (either direction counts, unweighted = 1): adjacent, shared {4}
    torch.testing.assert_close(r[0, 0, 2, 4:6], torch.tensor([1.0, 1.0]))
    torch.testing.assert_close(r[0, 0, 2, 6], torch.log1p(torch.tensor(1.0)))
    assert torch.equal(r, r.transpose(1, 2))  # symmetric
    assert torch.equal(r[:, [0, 1, 2], [0, 1, 2]], torch.zeros(2, 3, 8))  # no self pairs
    assert torch.equal(r[1, 2], torch.zeros(3, 8)) and torch.equal(r[1, :, 2], torch.zeros(3, 8))  # padding
    torch.testing.assert_close(r[1, 0, 1], r[0, 2, 0])  # the same gene pair in another sample


def test_pair_path_equals_the_dense_rows():
    """K = 2 (grid pairs) takes the sparse path; it must give the dense path's values exactly."""
    g = torch.Generator().manual_seed(0)
    n = 60
    und = torch.randint(0, n, (2, 300), generator=g)
    w = torch.rand(300, generator=g)
    dirc = torch.randint(0, n, (2, 80), generator=g)
    graph = CellGraph([f"G{i}" for i in range(n)], {"u": EdgeType("u", False, und, w), "d": EdgeType("d", True, dirc)})
    rel = PairRelations(graph, ["u", "d"], values=torch.rand(n, 2, generator=g))
    pairs = torch.randint(0, n, (500, 2), generator=g)
    mask = torch.ones(500, 2, dtype=torch.bool)
    mask[::7, 1] = False
    sparse = rel(pairs, mask)
    dense = rel(torch.cat([pairs, torch.zeros(500, 1, dtype=torch.long)], 1),
                torch.cat([mask, torch.zeros(500, 1, dtype=torch.bool)], 1))[:, :2, :2]
    assert sparse.shape == (500, 2, 2, rel.num_features)
    torch.testing.assert_close(sparse, dense, rtol=0, atol=1e-6)


def test_relation_tables_equal_dense_rows():
    """The common-neighbour tables and sorted edge keys give the dense-row path's values bitwise."""
    from cellgi.testing import random_graph

    graph = random_graph(60)
    values = torch.randn(60, 2)
    rel = PairRelations(graph, graph.edge_type_names, values)
    assert rel.uses_shared_tables
    g = torch.Generator().manual_seed(0)
    padded = torch.randint(0, 60, (500, 3), generator=g)
    mask = torch.ones(500, 3, dtype=torch.bool)
    mask[::4, 2] = False
    assert torch.equal(rel(padded, mask), rel.forward_dense(padded, mask))
    assert torch.equal(PairRelations(_graph(), ["u", "d"])(torch.tensor([[0, 3], [4, 1]]), torch.ones(2, 2, dtype=torch.bool)),
                       PairRelations(_graph(), ["u", "d"]).forward_dense(torch.tensor([[0, 3], [4, 1]]),
                                                                         torch.ones(2, 2, dtype=torch.bool)))

