"""Graph aggregators: values, weights, per-node independence; pairwise_interaction equals the naive
per-pair MLP over a materialised candidate stack."""

from __future__ import annotations

import pytest
import torch

from cellgi.nn.aggregators import (
    CrossAttentionAggregator,
    MeanAggregator,
    PairwiseInteractionAggregator,
    SumAggregator,
)
from cellgi.registry import get_registry


def _xs(g: int = 3, shape=(7, 4), h: int = 8) -> list[torch.Tensor]:
    return [torch.randn(*shape, h) for _ in range(g)]


def test_sum_and_mean():
    xs = _xs()
    out, w = SumAggregator(dim=8, num_graphs=3)(xs)
    torch.testing.assert_close(out, xs[0] + xs[1] + xs[2])
    assert w is None
    out, w = MeanAggregator(dim=8, num_graphs=3)(xs)
    torch.testing.assert_close(out, (xs[0] + xs[1] + xs[2]) / 3)
    assert xs[0].data_ptr() != out.data_ptr()  # inputs are not modified in place
    with pytest.raises(ValueError, match="built for 3 graphs got 2"):
        SumAggregator(dim=8, num_graphs=3)(xs[:2])


def test_cross_attention_weights_and_shapes():
    agg = CrossAttentionAggregator(num_heads=2, dim=8, num_graphs=3)
    xs = _xs()
    out, w = agg(xs)
    assert out.shape == (7, 4, 8) and w.shape == (7, 4, 3)
    torch.testing.assert_close(w.sum(-1), torch.ones(7, 4))
    with pytest.raises(ValueError, match="divisible"):
        CrossAttentionAggregator(num_heads=3, dim=8, num_graphs=2)


def _naive_pairwise(agg: PairwiseInteractionAggregator, xs: list[torch.Tensor]):
    """Every candidate materialised: c_p = MLP_p([x_a, x_b]) with the module's own weights."""
    d = agg.hidden_dim
    cands = []
    for p, (a, b) in enumerate(agg.pairs):
        w_a = agg.w_in[a, b * d : (b + 1) * d]  # [D, H]
        w_b = agg.w_in[b, a * d : (a + 1) * d]
        z = agg.act(xs[a] @ w_a.t() + xs[b] @ w_b.t() + agg.b_in[p, :, 0])
        for i in range(agg.num_layers - 2):
            z = agg.act(z @ agg.w_hidden[i, p] + agg.b_hidden[i, p, :, 0])
        cands.append(z @ agg.w_out[p] + agg.b_out[p])
    if agg.include_identity:
        cands.append(torch.stack(xs).mean(0))
    c = torch.stack(cands, dim=-2)  # [..., P+1, H]
    alpha = torch.softmax(agg.score(c).squeeze(-1), dim=-1)
    return agg.norm((alpha.unsqueeze(-1) * c).sum(-2)), alpha


@pytest.mark.parametrize("layers,hidden,identity,norm", [(2, 5, True, "none"), (3, None, False, "layer"),
                                                          (4, 3, True, "rms")])
def test_pairwise_equals_naive_candidates(layers, hidden, identity, norm):
    agg = PairwiseInteractionAggregator(layers, hidden, "gelu", identity, norm, dim=8, num_graphs=3)
    assert len(agg.pairs) == 6 and agg.num_candidates == 6 + identity
    xs = _xs()
    out, w = agg(xs)
    ref_out, ref_w = _naive_pairwise(agg, xs)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w, ref_w, atol=1e-6, rtol=1e-5)
    assert w.shape == (7, 4, 6 + identity)
    labels = agg.weight_labels(["p", "c", "r"])
    assert labels[:3] == ["p*p", "p*c", "p*r"] and (labels[-1] == "identity") == identity


def test_pairwise_single_graph_and_bad_depth():
    agg = PairwiseInteractionAggregator(dim=4, num_graphs=1)
    out, w = agg([torch.randn(5, 4)])
    assert out.shape == (5, 4) and w.shape == (5, 2)
    with pytest.raises(ValueError, match=">= 2"):
        PairwiseInteractionAggregator(1, dim=4, num_graphs=2)


@pytest.mark.parametrize("name", get_registry("aggregator").names())
def test_every_aggregator_is_per_node(name):
    """Changing one gene/sample's inputs changes only that gene/sample's output (no mixing)."""
    agg = get_registry("aggregator").build({"type": name}, dim=8, num_graphs=3).eval()
    xs = _xs(shape=(6, 3))
    out, _ = agg(xs)
    xs2 = [x.clone() for x in xs]
    for x in xs2:
        x[2, 1] += torch.randn(8)
    out2, _ = agg(xs2)
    changed = (out2 - out).abs().amax(-1) > 1e-6
    assert changed[2, 1] and changed.sum() == 1
