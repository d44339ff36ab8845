"""masked_gin: agrees with PyG's GINConv, edge masks remove edges, the batched path is one SpMM."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.nn import GINConv

from cellgi.nn.convs import MaskedGIN
from cellgi.nn.operator import GraphOperator
from nn_helpers import keep_from_sets, per_sample_reference, random_graph, random_sets


@pytest.mark.parametrize("train_eps,eps", [(False, 0.0), (True, 0.3)])
def test_single_graph_matches_pyg_ginconv(train_eps, eps):
    graph = random_graph(30)
    ei = graph.edge_index("dir")
    conv = MaskedGIN(num_mlp_layers=3, mlp_hidden_dim=12, train_eps=train_eps, eps=eps, in_dim=8, out_dim=5)
    ref = GINConv(conv.mlp, eps=eps, train_eps=train_eps)
    x = torch.randn(30, 8)
    torch.testing.assert_close(conv(x, ei), ref(x, ei))
    assert (conv.eps.requires_grad if train_eps else "eps" in dict(conv.named_buffers()))


def test_edge_mask_equals_removing_edges():
    graph = random_graph(30)
    ei = graph.edge_index("und_a")
    mask = torch.rand(ei.shape[1]) > 0.4
    conv = MaskedGIN(in_dim=8, out_dim=8)
    x = torch.randn(30, 8)
    torch.testing.assert_close(conv(x, ei, mask), conv(x, ei[:, mask]))


@pytest.mark.parametrize("eps", [0.0, 0.5])
def test_batched_is_shared_spmm_and_matches_copies(eps):
    n = 40
    graph = random_graph(n)
    op = GraphOperator.from_graph(graph, "und_a")
    conv = MaskedGIN(eps=eps, in_dim=8, out_dim=8)
    sets = random_sets(n, [3, 2, 1], seed=9)
    keep = keep_from_sets(n, sets)
    x = torch.randn(n, 3, 8)  # different inputs per sample (as in layers after the first)
    out = conv.forward_batched(x, op, keep)
    dense = op.adj.to_dense()
    expect = conv.mlp((1 + eps) * x + torch.einsum("ij,jbh->ibh", dense, x * keep.unsqueeze(-1)))
    torch.testing.assert_close(out, expect, atol=1e-5, rtol=1e-5)
    for b in range(3):
        ref = per_sample_reference(conv, x[:, b], graph.edge_index("und_a"), keep[:, b : b + 1])[:, 0]
        torch.testing.assert_close(out[:, b][keep[:, b]], ref[keep[:, b]], atol=1e-5, rtol=1e-5)


def test_repr_and_reset():
    conv = MaskedGIN(num_mlp_layers=2, train_eps=True, eps=0.1, in_dim=4, out_dim=6)
    assert repr(conv).startswith("MaskedGIN(4, 6, eps=0.1, train_eps=True")
    with torch.no_grad():
        conv.eps.fill_(3.0)
    conv.reset_parameters()
    assert conv.eps.item() == pytest.approx(0.1)
