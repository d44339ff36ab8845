"""First-layer delta: the first layer run for the wildtype plus the affected (gene, column) pairs only
must give the same gene states, aggregation weights and gradients as running it over every column."""

from __future__ import annotations

import pytest
import torch

from cellgi.nn.convs import MaskedGIN
from cellgi.nn.model import LazyDango
from cellgi.nn.operator import GraphOperator
from cellgi.registry import get_registry
from cellgi.testing import check_conv_shared, check_first_layer_delta
from nn_helpers import keep_from_sets, make_batch, model_spec_from_yaml, random_graph, random_sets

N = 40


def spec(conv: str = "masked_gin", agg: str = "sum", residual: bool = True, dropout: float = 0.0, extra: str = ""):
    return model_spec_from_yaml(
        f"""
hidden_dim: 16
num_layers: 2
conv: {{type: {conv}}}
conv_wrapper: {{residual: {str(residual).lower()}, dropout: {dropout}}}
aggregator: {{type: {agg}}}
local_predictor: {{type: hypergraph_attention, num_heads: 2}}
{extra}"""
    )


def tricky_sets(graph) -> list[torch.Tensor]:
    """Deleted genes that are neighbours of each other, an isolated gene (no out-edges), a self-looped
    gene, and random sets."""
    ei = graph.edge_index("und_a")
    a, b = int(ei[0, 0]), int(ei[1, 0])
    return [torch.tensor([a, b]), torch.tensor([N - 1, 5]), torch.tensor([6, 7, 8])] + random_sets(N, [3, 2], seed=4)


@pytest.mark.parametrize("agg", get_registry("aggregator").names())
@pytest.mark.parametrize("residual", [True, False], ids=["residual", "plain"])
@pytest.mark.parametrize("num_sets", [1, 5], ids=["B1", "B5"])
def test_delta_equals_full_first_layer(agg, residual, num_sets):
    check_first_layer_delta("masked_gin", agg, residual=residual, num_sets=num_sets)


def test_predictions_with_and_without_delta_and_reference_agree():
    graph = random_graph(N)
    model = LazyDango.from_spec(spec(agg="pairwise_interaction"), graph, 2).eval()
    batch = make_batch(tricky_sets(graph), num_targets=2)
    with torch.no_grad():
        delta, _ = model(batch)
        model.first_layer_delta = False
        full, _ = model(batch)
        ref, _ = model.reference_forward(batch)
    torch.testing.assert_close(delta, full, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(delta, ref, atol=1e-5, rtol=1e-5)


def test_removed_in_edges_lists_every_edge_out_of_a_deleted_gene():
    graph = random_graph(N)
    sets = tricky_sets(graph)
    keep = keep_from_sets(N, sets)
    genes, cols = (~keep).nonzero(as_tuple=True)
    c = keep.shape[1]
    for name in graph.edge_type_names:
        op = GraphOperator.from_graph(graph, name)
        r = op.removed_in_edges(genes, cols, c)
        src, dst = op.edge_index
        expected = sorted(
            (int(s), int(d), col) for col, s_set in enumerate(sets) for s, d in zip(src.tolist(), dst.tolist())
            if s in s_set.tolist()
        )
        got = sorted(zip(r.src.tolist(), r.rows[r.slot].tolist(), (r.keys[r.slot] % c).tolist()))
        assert got == expected, name
        assert torch.equal(r.keys, torch.unique(r.keys)) and torch.all(r.weight == 1)


def test_masked_gin_forward_shared_matches_forward_batched():
    graph = random_graph(N)
    check_conv_shared(MaskedGIN(train_eps=True, eps=0.3, in_dim=8, out_dim=8), graph=graph, sets=tricky_sets(graph))


def test_when_the_delta_is_used():
    graph = random_graph(N)
    assert LazyDango.from_spec(spec(), graph, 1).uses_first_layer_delta
    assert not LazyDango.from_spec(spec(extra="first_layer_delta: false"), graph, 1).uses_first_layer_delta
    # a conv without forward_shared runs its first layer like the others
    assert not LazyDango.from_spec(spec(conv="masked_gatv2"), graph, 1).uses_first_layer_delta
    # dropout in the first layer would draw one mask for every column's unaffected genes: full path in
    # training, delta in evaluation (dropout is off there)
    model = LazyDango.from_spec(spec(dropout=0.2), graph, 1)
    assert not model.train().uses_first_layer_delta and model.eval().uses_first_layer_delta
    model = LazyDango.from_spec(
        model_spec_from_yaml("hidden_dim: 16\nnum_layers: 1\naggregator: {type: cross_attention, dropout: 0.1}"),
        graph, 1,
    )
    assert not model.train().uses_first_layer_delta and model.eval().uses_first_layer_delta
