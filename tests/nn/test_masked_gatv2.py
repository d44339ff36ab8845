"""masked_gatv2: agrees with PyG's GATv2Conv; masked edges get zero weight; no NaN without in-edges."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.nn import GATv2Conv

from cellgi.nn.convs import MaskedGATv2
from cellgi.nn.operator import GraphOperator
from nn_helpers import keep_from_sets, random_graph, random_sets


def _pyg_copy(conv: MaskedGATv2) -> GATv2Conv:
    ref = GATv2Conv(conv.in_dim, conv.head_dim, heads=conv.heads, concat=conv.concat,
                    negative_slope=conv.negative_slope, add_self_loops=conv.add_self_loops)
    with torch.no_grad():
        ref.lin_l.weight.copy_(conv.lin_s.weight)
        ref.lin_l.bias.copy_(conv.lin_s.bias)
        ref.lin_r.weight.copy_(conv.lin_t.weight)
        ref.lin_r.bias.copy_(conv.lin_t.bias)
        ref.att.copy_(conv.att.unsqueeze(0))
        ref.bias.copy_(torch.randn_like(ref.bias))
        conv.bias.copy_(ref.bias)
    return ref


@pytest.mark.parametrize("concat", [True, False])
@pytest.mark.parametrize("self_loops", [True, False])
def test_single_graph_matches_pyg_gatv2(concat, self_loops):
    graph = random_graph(30)
    ei = graph.edge_index("und_b")  # holds some self-loops
    conv = MaskedGATv2(heads=2, concat=concat, add_self_loops=self_loops, in_dim=8, out_dim=8)
    ref = _pyg_copy(conv)
    x = torch.randn(30, 8)
    torch.testing.assert_close(conv(x, ei), ref(x, ei), atol=1e-5, rtol=1e-5)


def test_edge_mask_equals_removing_edges():
    graph = random_graph(30)
    ei = graph.edge_index("dir")
    mask = torch.rand(ei.shape[1]) > 0.5
    conv = MaskedGATv2(heads=4, in_dim=8, out_dim=8)
    x = torch.randn(30, 8)
    torch.testing.assert_close(conv(x, ei, mask), conv(x, ei[:, mask]), atol=1e-6, rtol=1e-5)


def test_masked_edges_get_zero_weight_and_isolated_genes_no_nan():
    """Without self-loops, a gene whose in-edges are all masked aggregates exactly zero (output = bias),
    with finite gradients."""
    n = 6
    ei = torch.tensor([[1, 2, 3, 4], [0, 0, 5, 5]])
    op = GraphOperator("toy", ei, n)
    conv = MaskedGATv2(heads=2, add_self_loops=False, in_dim=4, out_dim=4)
    with torch.no_grad():
        conv.bias.copy_(torch.arange(4.0))
    keep = torch.ones(n, 2, dtype=torch.bool)
    keep[1, 0] = keep[2, 0] = False  # sample 0: gene 0 loses both in-neighbours
    keep[3, 1] = False  # sample 1: gene 5 keeps in-neighbour 4 only
    x = torch.randn(n, 2, 4, requires_grad=True)
    out = conv.forward_batched(x, op, keep)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[0, 0], torch.arange(4.0))
    # gene 5 in sample 1 attends only to gene 4 (weight 1): output = W_s x_4 + bias
    expect = conv.lin_s(x[4, 1]) + conv.bias
    torch.testing.assert_close(out[5, 1], expect)
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert torch.count_nonzero(x.grad[3, 1]) == 0  # a masked source gets no gradient


def test_out_dim_must_divide_heads_when_concat():
    with pytest.raises(ValueError, match="divisible"):
        MaskedGATv2(heads=3, in_dim=8, out_dim=8)
    conv = MaskedGATv2(heads=3, concat=False, in_dim=8, out_dim=8)
    assert conv(torch.randn(5, 8), torch.tensor([[0, 1], [1, 2]])).shape == (5, 8)


def test_batched_self_loops_are_cached_per_operator():
    graph = random_graph(20)
    op = GraphOperator.from_graph(graph, "und_b")
    conv = MaskedGATv2(heads=2, in_dim=4, out_dim=4)
    keep = keep_from_sets(20, random_sets(20, [2, 2]))
    conv.forward_batched(torch.randn(20, 2, 4), op, keep)
    first = op.edge_index_with_self_loops()
    assert first is op.edge_index_with_self_loops()
    assert first.shape[1] == op.num_edges - int((op.edge_index[0] == op.edge_index[1]).sum()) + 20
    assert repr(conv).startswith("MaskedGATv2(4, 4, heads=2")
