"""Every registered model component, in every role: built from YAML, run, shapes and repr checked.
Every conv: batched shared-adjacency path == per-sample copies. Every conv x aggregator x combiner
combination: builds from YAML and trains one step on a small real yeast subgraph."""

from __future__ import annotations

import itertools

import pytest
import torch

from cellgi.nn.convs import MaskedConv
from cellgi.nn.model import LazyDango
from cellgi.registry import get_registry
from cellgi.testing import (
    check_aggregator_rows_independent,
    check_conv_batched_equals_copies,
    check_conv_batchmates_independent,
    check_conv_gradients,
    check_conv_shared,
)
from nn_helpers import make_batch, model_spec_from_yaml, random_graph, random_sets

H = 16
ROLES = ["conv", "aggregator", "pooling", "local_predictor", "global_predictor", "combiner"]


def _names(role: str) -> list[str]:
    return get_registry(role).names()


def _component_yaml(role: str, name: str) -> str:
    """A model section that uses ``name`` for ``role`` and consistent defaults elsewhere."""
    lines = [f"hidden_dim: {H}", "num_layers: 2", f"{role}: {{type: {name}}}"]
    if role == "combiner":
        entry = get_registry("combiner").get(name)
        if not entry.declares("uses_local"):
            lines.append("local_predictor: null")
    return "\n".join(lines)


@pytest.mark.parametrize(
    "role,name", [(role, name) for role in ROLES for name in _names(role)], ids=lambda v: str(v)
)
def test_component_builds_from_yaml_and_runs(role, name):
    spec = model_spec_from_yaml(_component_yaml(role, name))
    assert getattr(spec, role).type == name
    graph = random_graph(30)
    model = LazyDango.from_spec(spec, graph, num_targets=2)
    batch = make_batch(random_sets(30, [2, 3, 2]), num_targets=2)
    pred, reps = model(batch)
    assert pred.shape == (3, 2) and torch.isfinite(pred).all()
    if model.uses_global:
        assert reps["z_p"].shape == (3, H) and reps["z_w"].shape == (1, H)
    else:  # local_only: wildtype states only, no pooled cell states
        assert reps["z_p"] is None and model.pooling is None and model.global_predictor is None
        assert reps["local_interaction"].shape == (3, 2)
    part = {
        "conv": model.layers[0][0].conv,
        "aggregator": model.aggregators[0],
        "pooling": model.pooling,
        "local_predictor": model.local_predictor,
        "global_predictor": model.global_predictor,
        "combiner": model.combiner,
    }[role]
    assert part is not None
    text = repr(part)
    assert text and "object at 0x" not in text
    assert type(part).__name__ in text


@pytest.mark.parametrize("role", ROLES)
def test_role_members_subclass_their_base(role):
    from cellgi.nn import Combiner, GlobalPredictor, GraphAggregator, LocalPredictor, Pooling

    base = {
        "conv": MaskedConv,
        "aggregator": GraphAggregator,
        "pooling": Pooling,
        "local_predictor": LocalPredictor,
        "global_predictor": GlobalPredictor,
        "combiner": Combiner,
    }[role]
    for name, entry in get_registry(role).loaded().items():
        if entry.provider == "cellgi":
            assert issubclass(entry.factory, base), name


# ------------------------------------------------------------------ conv equivalence contract
# The checks live in cellgi.testing (plugin authors call the same ones).
@pytest.mark.parametrize("conv_name", _names("conv"))
@pytest.mark.parametrize("edge_type", ["und_a", "und_b", "dir"])
@pytest.mark.parametrize("sizes", [[2], [3, 2, 3, 1]], ids=["B1", "B4"])
def test_batched_equals_per_sample_copies(conv_name, edge_type, sizes):
    """For every kept gene, shared-adjacency message passing == message passing on the per-sample graph
    with the deleted genes' edges removed (B copies, PyG Batch)."""
    check_conv_batched_equals_copies(conv_name, edge_type=edge_type, sizes=sizes)


@pytest.mark.parametrize("conv_name", _names("conv"))
def test_batched_gradients_equal_per_sample_copies(conv_name):
    check_conv_gradients(conv_name)


@pytest.mark.parametrize("conv_name", _names("conv"))
def test_batchmates_are_independent(conv_name):
    check_conv_batchmates_independent(conv_name)


@pytest.mark.parametrize("conv_name", _names("conv"))
def test_shared_path_equals_batched(conv_name):
    check_conv_shared(conv_name)


@pytest.mark.parametrize("name", _names("aggregator"))
def test_aggregator_rows_are_independent(name):
    check_aggregator_rows_independent(name)


# --------------------------------------------------------- every combination on real yeast data
COMBOS = list(itertools.product(_names("conv"), _names("aggregator"), _names("combiner")))


@pytest.mark.realdata
@pytest.mark.parametrize("conv,aggregator,combiner", COMBOS, ids=["-".join(c) for c in COMBOS])
def test_every_combination_trains_on_real_subgraph(yeast_subset, conv, aggregator, combiner):
    uses_local = get_registry("combiner").get(combiner).declares("uses_local")
    spec = model_spec_from_yaml(
        f"""
hidden_dim: {H}
num_layers: 2
conv: {{type: {conv}}}
aggregator: {{type: {aggregator}}}
combiner: {{type: {combiner}}}
local_predictor: {"{type: hypergraph_attention, num_heads: 2}" if uses_local else "null"}
"""
    )
    graph = yeast_subset.graph
    model = LazyDango.from_spec(spec, graph, num_targets=1)
    batch = make_batch(yeast_subset.sets[14:20])  # digenic and trigenic samples mixed
    pred, reps = model(batch)
    assert pred.shape == (6, 1)
    loss = (pred - batch.y).square().mean()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is None or torch.isfinite(g).all() for g in grads)
    # message passing is trained: the gene embedding receives a gradient
    assert model.embedding.weight.grad is not None and model.embedding.weight.grad.abs().sum() > 0
    assert (reps["gate_weights"] is not None) == (combiner == "gate")
    assert (reps["local_interaction"] is not None) == uses_local
