"""Heads: hypergraph attention on padded sets (variable K, no padding leaks, permutation invariant),
global MLP inputs, combiners."""

from __future__ import annotations

import pytest
import torch

from cellgi.nn.heads import (
    ConcatCombiner,
    GateCombiner,
    GlobalOnlyCombiner,
    HypergraphAttention,
    MLPGlobalPredictor,
)


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
    pred, rep = head(emb, mask)
    assert pred.shape == (3, 2) and rep.shape == (3, 8)
    for i, s in enumerate(sets):
        alone, alone_rep = head(s.unsqueeze(0), torch.ones(1, len(s), dtype=torch.bool))
        torch.testing.assert_close(pred[i], alone[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(rep[i], alone_rep[0], atol=1e-5, rtol=1e-5)
    perm, _ = head(sets[1][[2, 0, 1]].unsqueeze(0), torch.ones(1, 3, dtype=torch.bool))
    torch.testing.assert_close(perm[0], pred[1], atol=1e-5, rtol=1e-5)


def test_hypergraph_attention_is_used_and_single_gene_is_finite():
    head = _trained_like(HypergraphAttention(num_heads=2, dim=8, num_targets=1))
    a, b, c = torch.randn(3, 8)
    p1, _ = head(torch.stack([a, b]).unsqueeze(0), torch.ones(1, 2, dtype=torch.bool))
    p2, _ = head(torch.stack([a, c]).unsqueeze(0), torch.ones(1, 2, dtype=torch.bool))
    assert not torch.allclose(p1, p2)  # gene a's contribution depends on its partner
    p, _ = head(a.view(1, 1, 8), torch.ones(1, 1, dtype=torch.bool))
    assert torch.isfinite(p).all()


def test_hypergraph_rejects_empty_sets_and_bad_heads():
    head = HypergraphAttention(num_heads=2, dim=8, num_targets=1)
    with pytest.raises(ValueError, match="K = 0"):
        head(torch.zeros(2, 0, 8), torch.zeros(2, 0, dtype=torch.bool))
    with pytest.raises(ValueError, match="divisible"):
        HypergraphAttention(num_heads=3, dim=8, num_targets=1)


def test_hypergraph_rezero_starts_at_identity_dynamic():
    head = HypergraphAttention(num_heads=2, dim=8, num_targets=1).eval()
    emb = torch.randn(2, 3, 8)
    mask = torch.ones(2, 3, dtype=torch.bool)
    x = head.input_norm(emb)
    expect = (x - head.static(x)).square()
    torch.testing.assert_close(head(emb, mask)[1], expect.mean(1))


@pytest.mark.parametrize("inputs", [["z_p"], ["z_p", "z_w"], ["z_w", "z_i", "z_p"]])
@pytest.mark.parametrize("num_layers", [1, 3])
def test_global_mlp(inputs, num_layers):
    head = MLPGlobalPredictor(num_layers=num_layers, inputs=inputs, dim=8, num_targets=2)
    z_w, z_i = torch.randn(1, 8), torch.randn(4, 8)
    pred, rep = head(z_w, z_i, z_w - z_i)
    assert pred.shape == (4, 2) and rep.shape == (4, 8)
    if inputs == ["z_p"] and num_layers == 1:
        torch.testing.assert_close(rep, z_w - z_i)
    with pytest.raises(ValueError, match="distinct"):
        MLPGlobalPredictor(inputs=["z_p", "z_p"], dim=8, num_targets=1)


@pytest.mark.parametrize("gate_input", ["predictions", "representations"])
def test_gate_combiner(gate_input):
    comb = GateCombiner(gate_input=gate_input, dim=8, num_targets=2)
    local = (torch.randn(5, 2), torch.randn(5, 8))
    glob = (torch.randn(5, 2), torch.randn(5, 8))
    pred, w = comb(local, glob)
    torch.testing.assert_close(w.sum(-1), torch.ones(5))
    torch.testing.assert_close(pred, w[:, :1] * local[0] + w[:, 1:] * glob[0])
    with pytest.raises(ValueError, match="needs the local head"):
        comb(None, glob)


def test_concat_and_global_only():
    local = (torch.randn(5, 1), torch.randn(5, 8))
    glob = (torch.randn(5, 1), torch.randn(5, 8))
    pred, w = ConcatCombiner(dim=8, num_targets=1)(local, glob)
    assert pred.shape == (5, 1) and w is None
    only = GlobalOnlyCombiner(dim=8, num_targets=1)
    assert torch.equal(only(None, glob)[0], glob[0])
    with pytest.raises(ValueError, match="uses no local head"):
        only(local, glob)
    assert ConcatCombiner.uses_local and not GlobalOnlyCombiner.uses_local
