"""``value_linear`` additive term: its declared capability, built inside the model from spec YAML, a sum
over the deleted genes of a linear map of the named columns only."""

from __future__ import annotations

import pytest
import torch

from cellgi.nn.heads import HeadInput
from cellgi.nn.model import LazyDango
from cellgi.registry import get_registry
from cellgi.testing import check_documented, make_batch, model_spec_from_yaml, random_graph, random_sets
from cellgi_gated_sum.additive import ValueLinearAdditive

N = 12
FEATURES = ["pheno.single", "pheno.double", "other.x"]


def build(extra: str = "") -> LazyDango:
    spec = model_spec_from_yaml(
        "hidden_dim: 8\nnum_layers: 1\nlocal_predictor: {type: hypergraph_attention, num_heads: 2}\n"
        "additive_term: {type: value_linear, gene_values: ['pheno.*']" + extra + "}"
    )
    torch.manual_seed(0)
    feats = torch.randn(N, 3, generator=torch.Generator().manual_seed(1))
    return LazyDango.from_spec(spec, random_graph(N), 2, node_features=feats, feature_names=FEATURES)


def test_declares_uses_gene_values() -> None:
    entry = get_registry("additive_term").get("value_linear")
    assert entry.provider == "cellgi-gated-sum" and entry.status == "ok"
    assert entry.declares("uses_gene_values") and not entry.declares("wants_memory")
    check_documented("additive_term", "value_linear")


def test_built_in_the_model_reads_the_named_columns_only() -> None:
    model = build()
    term = model.additive_term
    assert isinstance(term, ValueLinearAdditive) and term.value_names == ["pheno.single", "pheno.double"]
    torch.testing.assert_close(model.additive_values, model.embedding.features[:, :2])
    batch = make_batch(random_sets(N, [2, 3, 2]), num_targets=2)
    pred, reps = model.eval()(batch)
    torch.testing.assert_close(pred, reps["additive"])  # the interaction part starts scaled by 0
    per_gene = term.linear(model.additive_values)  # [N, T]
    expected = torch.stack([per_gene[s].sum(0) for s in random_sets(N, [2, 3, 2])])
    torch.testing.assert_close(reps["additive"], expected)
    pred.sum().backward()
    assert term.linear.weight.grad is not None and term.linear.weight.grad.abs().sum() > 0


def test_padding_is_ignored_and_values_are_required() -> None:
    term = build(", bias: false").additive_term
    assert term is not None and term.linear.bias is None
    values = torch.randn(2, 3, 2)
    mask = torch.tensor([[True, True, False], [True, True, True]])
    out = term(HeadInput(states=torch.zeros(2, 3, 8), mask=mask, values=values))
    garbage = values.clone()
    garbage[0, 2] = 1e6
    torch.testing.assert_close(term(HeadInput(states=torch.zeros(2, 3, 8), mask=mask, values=garbage)), out)
    with pytest.raises(ValueError, match="value_linear needs HeadInput.values"):
        term(HeadInput(states=torch.zeros(2, 3, 8), mask=mask))
