"""GraphOperator: the shared CSR adjacency, its transpose, differentiable SpMM, buffers not persisted."""

from __future__ import annotations

import torch

from cellgi.nn.operator import GraphOperator, spmm
from nn_helpers import random_graph


def test_adjacency_matches_cellgraph_and_edges():
    graph = random_graph(25)
    for name in graph.edge_type_names:
        op = GraphOperator.from_graph(graph, name)
        ei = graph.edge_types[name].edge_index
        want = torch.zeros(25, 25).index_put_((ei[1], ei[0]), torch.ones(ei.shape[1]), accumulate=True)
        torch.testing.assert_close(op.adj.to_dense(), want)  # A[dst, src] = 1
        torch.testing.assert_close(op.adj_t.to_dense(), op.adj.to_dense().t())
        assert op.num_edges == graph.edge_types[name].num_edges
        assert op.directed == graph.edge_types[name].directed
        dst = op.edge_index[1]
        assert torch.all(dst[1:] >= dst[:-1]), "edges are sorted by target"
    assert "num_edges=" in repr(op)


def test_spmm_forward_and_gradient_match_dense():
    graph = random_graph(25)
    op = GraphOperator.from_graph(graph, "dir")
    x = torch.randn(25, 12, requires_grad=True)
    y = spmm(op.adj, op.adj_t, x)
    dense = op.adj.to_dense()
    torch.testing.assert_close(y, dense @ x.detach())
    g = torch.randn(25, 12)
    (y * g).sum().backward()
    torch.testing.assert_close(x.grad, dense.t() @ g)
    x64 = torch.randn(25, 3, dtype=torch.float64)
    assert spmm(op.adj, op.adj_t, x64).dtype == torch.float64


def test_buffers_move_but_are_not_saved():
    graph = random_graph(10)
    op = GraphOperator.from_graph(graph, "und_a")
    op.edge_index_with_self_loops()
    assert op.state_dict() == {}
    op = op.double()
    assert op.adj.dtype == torch.float64 and op.edge_index.dtype == torch.long


def test_model_tells_ddp_to_skip_graph_buffers():
    from nn_helpers import model_spec_from_yaml

    from cellgi.nn.model import LazyDango

    graph = random_graph(10)
    model = LazyDango.from_spec(model_spec_from_yaml("hidden_dim: 8\nnum_layers: 1"), graph, 1)
    ignored = set(model._ddp_params_and_buffers_to_ignore)
    buffers = {n for n, _ in model.named_buffers() if n.startswith("operators.")}
    assert buffers and buffers <= ignored


def test_spmm_under_cpu_bf16_autocast_returns_bf16_with_gradients():
    # bf16-mixed training on CPU runs the sparse products in bf16 (the CSR sum kernel has them)
    graph = random_graph(25)
    op = GraphOperator.from_graph(graph, "und_a")
    x = torch.randn(25, 12, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        xb = x * 1.0  # any autocast region input
        y = spmm(op.adj, op.adj_t, xb.to(torch.bfloat16))
    assert y.dtype == torch.bfloat16
    dense = op.adj.to_dense()
    torch.testing.assert_close(y.float(), dense @ x.detach().bfloat16().float(), atol=5e-2, rtol=2e-2)
    y.float().sum().backward()
    torch.testing.assert_close(x.grad, dense.t() @ torch.ones(25, 12), atol=5e-2, rtol=2e-2)
