"""Local heads: hypergraph attention on padded sets (variable K, no padding leaks, permutation invariant)."""

from __future__ import annotations

import pytest
import torch

from cellgi.nn.heads import HeadInput, HypergraphAttention


def _trained_like(head: HypergraphAttention) -> HypergraphAttention:
    # ReZero scales start at 0; give them values so that attention actually contributes
    with torch.no_grad():
        for layer in head.layers:
            layer.alpha_attn.fill_(0.7)
            layer.alpha_ff.fill_(0.3)
    return head.eval()


@pytest.mark.parametrize("exclude_self", [True, False])
def test_hypergraph_padding_and_batch_independence(exclude_self):
    head = _trained_like(HypergraphAttention(num_layers=2, num_heads=2, exclude_self=exclude_self,
                                             dim=8, num_targets=2))
    sets = [torch.randn(2, 8), torch.randn(3, 8), torch.randn(3, 8)]
    emb = torch.zeros(3, 3, 8)
    mask = torch.zeros(3, 3, dtype=torch.bool)
    for i, s in enumerate(sets):
        emb[i, : len(s)] = s
        mask[i, : len(s)] = True
    emb[0, 2] = 1e4  # padding garbage must not leak
    pred, rep = head(HeadInput(emb, mask))
    assert pred.shape == (3, 2) and rep.shape == (3, 8)
    for i, s in enumerate(sets):
        alone, alone_rep = head(HeadInput(s.unsqueeze(0), torch.ones(1, len(s), dtype=torch.bool)))
        torch.testing.assert_close(pred[i], alone[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(rep[i], alone_rep[0], atol=1e-5, rtol=1e-5)
    perm, _ = head(HeadInput(sets[1][[2, 0, 1]].unsqueeze(0), torch.ones(1, 3, dtype=torch.bool)))
    torch.testing.assert_close(perm[0], pred[1], atol=1e-5, rtol=1e-5)


def test_hypergraph_attention_is_used_and_single_gene_is_finite():
    head = _trained_like(HypergraphAttention(num_heads=2, dim=8, num_targets=1))
    a, b, c = torch.randn(3, 8)
    p1, _ = head(HeadInput(torch.stack([a, b]).unsqueeze(0), torch.ones(1, 2, dtype=torch.bool)))
    p2, _ = head(HeadInput(torch.stack([a, c]).unsqueeze(0), torch.ones(1, 2, dtype=torch.bool)))
    assert not torch.allclose(p1, p2)  # gene a's contribution depends on its partner
    p, _ = head(HeadInput(a.view(1, 1, 8), torch.ones(1, 1, dtype=torch.bool)))
    assert torch.isfinite(p).all()


def test_hypergraph_rejects_empty_sets_and_bad_heads():
    head = HypergraphAttention(num_heads=2, dim=8, num_targets=1)
    with pytest.raises(ValueError, match="K = 0"):
        head(HeadInput(torch.zeros(2, 0, 8), torch.zeros(2, 0, dtype=torch.bool)))
    with pytest.raises(ValueError, match="divisible"):
        HypergraphAttention(num_heads=3, dim=8, num_targets=1)


def test_hypergraph_rezero_starts_at_identity_dynamic():
    head = HypergraphAttention(num_heads=2, dim=8, num_targets=1).eval()
    emb = torch.randn(2, 3, 8)
    mask = torch.ones(2, 3, dtype=torch.bool)
    x = head.input_norm(emb)
    expect = (x - head.static(x)).square()
    torch.testing.assert_close(head(HeadInput(emb, mask))[1], expect.mean(1))
