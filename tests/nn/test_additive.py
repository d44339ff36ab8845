"""additive_term members: built from YAML, additive over genes, interaction scale starting at zero."""

from __future__ import annotations

import pytest
import torch

from cellgi.nn.additive import AdditiveTerm
from cellgi.nn.model import LazyDango
from cellgi.registry import get_registry
from nn_helpers import make_batch, model_spec_from_yaml, random_graph, random_sets


@pytest.mark.parametrize("name", get_registry("additive_term").names())
def test_member_builds_from_yaml_and_sums_over_genes(name):
    spec = model_spec_from_yaml(f"hidden_dim: 8\nnum_layers: 1\nlocal_predictor: {{type: hypergraph_attention, "
                                f"num_heads: 2}}\nadditive_term: {{type: {name}}}")
    model = LazyDango.from_spec(spec, random_graph(12), 2)
    assert isinstance(model.additive_term, AdditiveTerm) and torch.equal(model.additive_term.scale, torch.zeros(2))
    term = model.additive_term.eval()
    x = torch.randn(3, 3, 8)
    mask = torch.tensor([[True, True, False], [True, True, True], [True, False, False]])
    out = term(x, x, mask)
    single = torch.stack([term(x[:, i : i + 1], x[:, i : i + 1], mask[:, i : i + 1]) for i in range(3)]).sum(0)
    torch.testing.assert_close(out, single)  # a sum of per-gene terms, padding ignored
    pred, reps = model.eval()(make_batch(random_sets(12, [2, 3]), num_targets=2))
    torch.testing.assert_close(pred, reps["additive"])
