"""Poolings: attentional equals PyG's AttentionalAggregation over each sample's kept genes; deleted
genes and batch-mates never leak in."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.nn.aggr import AttentionalAggregation

from cellgi.nn.pooling import AttentionalPooling, MeanPooling
from cellgi.registry import get_registry
from nn_helpers import keep_from_sets, random_sets


@pytest.mark.parametrize("transform", [True, False])
def test_attentional_matches_pyg_on_kept_genes(transform):
    n, b, h = 25, 4, 8
    pool = AttentionalPooling(transform=transform, dim=h)
    ref = AttentionalAggregation(pool.gate, pool.nn)
    keep = keep_from_sets(n, random_sets(n, [2, 3, 3, 1]))
    x = torch.randn(n, b, h)
    out = pool(x, keep)
    flat = x.transpose(0, 1)[keep.t()]  # kept genes, sample after sample
    index = torch.arange(b).repeat_interleave(keep.sum(0))
    torch.testing.assert_close(out, ref(flat, index, dim_size=b), atol=1e-5, rtol=1e-5)


def test_mean_pooling():
    n = 10
    keep = keep_from_sets(n, random_sets(n, [2, 3]))
    x = torch.randn(n, 2, 4)
    out = MeanPooling(dim=4)(x, keep)
    for s in range(2):
        torch.testing.assert_close(out[s], x[keep[:, s], s].mean(0))


@pytest.mark.parametrize("name", get_registry("pooling").names())
def test_pooling_ignores_deleted_genes_and_batch_mates(name):
    n = 20
    pool = get_registry("pooling").build({"type": name}, dim=6).eval()
    keep = keep_from_sets(n, random_sets(n, [3, 2, 2]))
    x = torch.randn(n, 3, 6)
    out = pool(x, keep)
    assert out.shape == (3, 6) and torch.isfinite(out).all()
    x2 = x.clone()
    x2[~keep] = 1e3 * torch.randn(int((~keep).sum()), 6)  # deleted genes' states: garbage
    x2[:, 1:] = torch.randn(n, 2, 6)  # other samples change entirely
    out2 = pool(x2, keep)
    torch.testing.assert_close(out2[0], out[0])
    assert repr(pool).startswith(type(pool).__name__)
