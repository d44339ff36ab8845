"""Fused per-edge-type work: one layer's G convs run as batched products over the edge-type axis must give
the same gene states, aggregation weights, predictions and gradients as running them one by one."""

from __future__ import annotations

import pytest
import torch

from cellgi.nn.convs import MaskedGIN, fused
from cellgi.nn.model import LazyDango
from cellgi.nn.operator import GraphOperator, StackedOperator
from cellgi.registry import get_registry
from nn_helpers import keep_from_sets, make_batch, model_spec_from_yaml, random_graph, random_sets

N = 40


def spec(agg: str = "sum", conv: str = "{type: masked_gin, num_mlp_layers: 3}", wrapper: str = "{}",
         extra: str = ""):
    return model_spec_from_yaml(
        f"""
hidden_dim: 16
num_layers: 2
conv: {conv}
conv_wrapper: {wrapper}
aggregator: {{type: {agg}}}
local_predictor: {{type: hypergraph_attention, num_heads: 2}}
{extra}"""
    )


def both_ways(model: LazyDango, keep: torch.Tensor):
    """(states, weights, parameter gradients) with the fused path on, then off."""
    out = []
    params = [p for p in model.parameters() if p.requires_grad]
    for on in (True, False):
        model.fused_edge_types = on
        x, w = model.gene_states(keep)
        loss = x.square().mean() + sum(t.square().mean() for t in w)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        out.append((x.detach(), [t.detach() for t in w], grads))
    return out


def assert_same(a, b, names):
    (xa, wa, ga), (xb, wb, gb) = a, b
    torch.testing.assert_close(xa, xb, atol=1e-5, rtol=1e-5)
    assert len(wa) == len(wb)
    for s, t in zip(wa, wb):
        torch.testing.assert_close(s, t, atol=1e-6, rtol=1e-5)
    for name, s, t in zip(names, ga, gb):
        assert (s is None) == (t is None), name
        if s is not None:
            torch.testing.assert_close(s, t, atol=1e-5, rtol=1e-4, msg=lambda m: f"{name}: {m}")


def keep_for(graph, num_sets: int) -> torch.Tensor:
    sets = random_sets(N, [3, 2, 1, 3, 2][:num_sets], seed=3)
    return torch.cat([keep_from_sets(N, sets), torch.ones(N, 1, dtype=torch.bool)], 1)


@pytest.mark.parametrize("agg", get_registry("aggregator").names())
@pytest.mark.parametrize("delta", [True, False], ids=["delta", "no_delta"])
def test_fused_equals_unfused_for_every_aggregator(agg, delta):
    graph = random_graph(N)
    torch.manual_seed(0)
    model = LazyDango.from_spec(spec(agg=agg), graph, 1).train()
    model.first_layer_delta = delta
    assert all(model._fusable), "masked_gin layers with equal settings must fuse"
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert_same(*both_ways(model, keep_for(graph, 5)), names)


@pytest.mark.parametrize(
    "conv,wrapper",
    [
        ("{type: masked_gin, train_eps: true, eps: 0.3, mlp_norm: layer}", "{norm: rms, projection: true}"),
        ("{type: masked_gin, num_mlp_layers: 1, mlp_norm: rms}", "{norm: none, activation: relu, residual: false}"),
        ("{type: masked_gin, eps: -0.5, mlp_hidden_dim: 24, activation: silu}", "{norm: layer}"),
    ],
    ids=["train_eps+layer+rms+proj", "one_layer+rms+none", "eps+wide+silu"],
)
def test_fused_equals_unfused_for_conv_and_wrapper_settings(conv, wrapper):
    graph = random_graph(N)
    torch.manual_seed(1)
    model = LazyDango.from_spec(spec(agg="pairwise_interaction", conv=conv, wrapper=wrapper), graph, 1).train()
    model.first_layer_delta = False  # every layer through the fused path
    for layer in model.layers:  # give every edge type different weights and norms
        for w in layer:
            for p in w.parameters():
                p.data.add_(0.1 * torch.randn_like(p))
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert all(model._fusable)
    assert_same(*both_ways(model, keep_for(graph, 1)), names)


def test_fused_predictions_match_unfused_and_reference():
    graph = random_graph(N)
    model = LazyDango.from_spec(spec(agg="cross_attention"), graph, 2).eval()
    batch = make_batch(random_sets(N, [2, 3, 3, 1], seed=5), num_targets=2)
    model.fused_edge_types = True
    with torch.no_grad():
        a, _ = model(batch)
        model.fused_edge_types = False
        b, _ = model(batch)
        c, _ = model.reference_forward(batch)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a, c, atol=1e-5, rtol=1e-5)


def test_state_dict_is_unchanged_and_old_checkpoints_load():
    """The fused path stacks the per-type weights at forward time: the same keys as before, so a state
    dict saved by an unfused model (every checkpoint before the fusion) loads and predicts the same."""
    graph = random_graph(N)
    torch.manual_seed(2)
    old = LazyDango.from_spec(spec(), graph, 1).eval()
    old.fused_edge_types = False
    new = LazyDango.from_spec(spec(), graph, 1).eval()
    new.fused_edge_types = True
    assert list(old.state_dict()) == list(new.state_dict())
    assert any(".conv.mlp.layers.0.weight" in k for k in new.state_dict())
    new.load_state_dict(old.state_dict())
    batch = make_batch(random_sets(N, [2, 3], seed=6))
    with torch.no_grad():
        torch.testing.assert_close(new(batch)[0], old(batch)[0], atol=1e-5, rtol=1e-5)


def test_unfusable_layers_run_unfused():
    graph = random_graph(N)
    gat = LazyDango.from_spec(spec(conv="{type: masked_gatv2, heads: 2}"), graph, 1)
    assert not any(gat._fusable)  # masked_gatv2 declares no fused path
    model = LazyDango.from_spec(spec(), graph, 1)
    layer = list(model.layers[1])
    assert fused.can_fuse(layer)
    layer[1].conv.mlp.layers[1] = torch.nn.PReLU()  # an activation with parameters: not fusable
    assert not MaskedGIN.can_fuse([w.conv for w in layer]) and not fused.can_fuse(layer)


def test_stacked_operator_equals_per_type_products():
    graph = random_graph(N)
    # a repeated edge counts twice, as in the per-type CSR
    ops = [GraphOperator.from_graph(graph, n) for n in graph.edge_type_names]
    dup = GraphOperator("dup", torch.tensor([[0, 0, 3], [1, 1, 2]]), N)
    ops.append(dup)
    x = torch.randn(N, 7, requires_grad=True)
    expected = torch.cat([op.adj.to_dense() @ x for op in ops])
    for stacked_backward in (False, True):  # per-type backward (CPU) and one stacked transpose (GPUs)
        st = StackedOperator(ops, stacked_backward=stacked_backward)
        assert st.adj.shape == (len(ops) * N, N) and (st.adj_t is not None) == stacked_backward
        y = st.aggregate(x)
        torch.testing.assert_close(y, expected)
        g = torch.randn_like(y)
        (gx,) = torch.autograd.grad(y, x, g)
        torch.testing.assert_close(gx, torch.cat([op.adj.to_dense() for op in ops]).t() @ g, atol=1e-5, rtol=1e-5)
        assert st.num_edges == sum(op.adj.values().numel() for op in ops)


@pytest.mark.parametrize("bias", [True, False])
def test_stacked_linear_forms_agree(bias):
    """The CPU form (addmm per type into one output) and the accelerator form (bmm) of stacked_linear."""
    from cellgi.nn.mlp import _bmm_linear, stacked_linear

    lins = [torch.nn.Linear(6, 5, bias=bias) for _ in range(4)]
    h = torch.randn(4, 11, 6, requires_grad=True)
    a = stacked_linear(lins, h)
    w = torch.stack([lin.weight for lin in lins])
    b = torch.stack([lin.bias for lin in lins]) if bias else None
    expected = torch.stack([lin(h[i]) for i, lin in enumerate(lins)])
    torch.testing.assert_close(a, expected)
    torch.testing.assert_close(_bmm_linear(h, w, b), expected)
    g = torch.randn_like(a)
    grads = torch.autograd.grad(a, [h, *[p for lin in lins for p in lin.parameters()]], g)
    ref = torch.autograd.grad(expected, [h, *[p for lin in lins for p in lin.parameters()]], g)
    for x, y in zip(grads, ref):
        torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-5)


def test_stacked_cache_builds_once_per_device():
    graph = random_graph(N)
    ops = [GraphOperator.from_graph(graph, n) for n in graph.edge_type_names]
    cache = fused.StackedOperatorCache()
    first = cache.get(ops)
    assert cache.get(ops) is first
    assert first.num_types == len(ops)


def test_keep_mask_is_applied_to_every_type():
    graph = random_graph(N)
    model = LazyDango.from_spec(spec(), graph, 1)
    keep = keep_for(graph, 2)
    x = torch.randn(N, keep.shape[1], 16)
    layer = list(model.layers[0])
    got = fused.layer_outputs(layer, model.operators, x, keep, fused.StackedOperatorCache())
    expected = torch.stack([w.forward_batched(x, op, keep) for w, op in zip(layer, model.operators)])
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_fused_path_under_cpu_bf16_autocast():
    graph = random_graph(N)
    torch.manual_seed(3)
    model = LazyDango.from_spec(spec(agg="pairwise_interaction"), graph, 1).train()
    keep = keep_for(graph, 3)
    outs = []
    for on in (True, False):
        model.fused_edge_types = on
        with torch.autocast("cpu", dtype=torch.bfloat16):
            x, _ = model.gene_states(keep)
        (g,) = torch.autograd.grad(x.float().square().mean(), [model.layers[1][0].conv.mlp.layers[0].weight])
        outs.append((x.float().detach(), g))
    torch.testing.assert_close(outs[0][0], outs[1][0], atol=5e-2, rtol=5e-2)
    torch.testing.assert_close(outs[0][1], outs[1][1], atol=5e-2, rtol=1e-1)


def test_default_fuses_on_accelerators_only(monkeypatch):
    """``fused_edge_types=None``: one type at a time on CPUs (measured as fast or faster there), fused on
    other devices; True and False force it."""
    graph = random_graph(N)
    model = LazyDango.from_spec(spec(), graph, 1).eval()
    calls = []
    real = fused.layer_outputs
    monkeypatch.setattr(fused, "layer_outputs", lambda *a, **k: calls.append(1) or real(*a, **k))
    batch = make_batch(random_sets(N, [2, 3], seed=7))
    assert model.fused_edge_types is None
    with torch.no_grad():
        model(batch)
        assert calls == []
        model.fused_edge_types = True
        model(batch)
    assert len(calls) == len(model.layers) - 1  # the first layer runs through the delta
