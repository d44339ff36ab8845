"""Shared data of the baseline tests: a pair screen on a random graph with one per-gene input."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from cellgi.data.cellgraph import CellGraph, EdgeType
from cellgi.data.normalize import TargetNormalizer
from cellgi.data.perturbations import PerturbationDataset
from cellgi.data.splits import make_splits


@pytest.fixture
def bundle_with_features() -> SimpleNamespace:
    """Pairs of 40 genes on a random graph; the target is a function of a per-gene feature and of whether
    the pair is adjacent, so that a model of set features generalises to unseen genes."""
    g = torch.Generator().manual_seed(0)
    n = 40
    genes = [f"G{i}" for i in range(n)]
    src = torch.randint(0, n, (120,), generator=g)
    dst = torch.randint(0, n, (120,), generator=g)
    keep = src != dst
    ei = torch.stack([torch.cat([src[keep], dst[keep]]), torch.cat([dst[keep], src[keep]])])
    graph = CellGraph(genes, {"ppi": EdgeType("ppi", False, ei)})
    adj = torch.zeros(n, n)
    adj[ei[0], ei[1]] = 1
    f = torch.randn(n, generator=g)
    sets = [[a, b] for a in range(n) for b in range(a + 1, n)]
    y = torch.tensor([[f[a] * f[b] + 1.5 * adj[a, b]] for a, b in sets]) + 0.05 * torch.randn(len(sets), 1, generator=g)
    ds = PerturbationDataset.from_sets(sets, y, ["gene_interaction"], n)
    splits = make_splits(ds, "gene_folds", seed=0, num_folds=4, fold=0, val_fraction=0.15).splits
    norm = TargetNormalizer("zscore", target_names=["gene_interaction"]).fit(ds.y[splits["train"]])
    return SimpleNamespace(graph=graph, dataset=ds, splits=splits, normalizer=norm, target_names=["gene_interaction"],
                           gene_features=f.view(n, 1), feature_names=["t.f"])
