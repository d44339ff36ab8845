"""``gene_mean`` baseline: the role's contract (cellgi.testing.check_baseline), the formula, unseen genes."""

from __future__ import annotations

import torch

from cellgi.testing import baseline_data, check_baseline
from cellgi.baselines import build_baseline
from cellgi_gated_sum.baselines import GeneMeanBaseline


def test_meets_the_baseline_contract() -> None:
    check_baseline("gene_mean")
    check_baseline("gene_mean", {"shrinkage": 0.0})


def test_formula_and_unseen_genes() -> None:
    data = baseline_data()
    b = build_baseline({"type": "gene_mean", "shrinkage": 2.0}, data.context)
    assert isinstance(b, GeneMeanBaseline)
    info = b.fit(data)
    tr = data.splits["train"]
    y, w = data.y[tr, 0].double(), data.dataset.weight[tr].double()
    overall = (y * w).sum() / w.sum()
    sets = [data.dataset.genes_of(int(i)).tolist() for i in tr]
    gene = sets[0][0]
    rows = torch.tensor([gene in s for s in sets])
    expected = ((y[rows] * w[rows]).sum() + 2.0 * overall) / (w[rows].sum() + 2.0)
    torch.testing.assert_close(b.gene_means[gene, 0], expected)
    n = data.context.graph.num_nodes
    unseen = n - 1  # the last genes appear in test sets only
    assert info["genes_with_samples"] < n
    torch.testing.assert_close(b.gene_means[unseen, 0], overall)
    pred = b.predict(torch.tensor([[gene, unseen]]), torch.ones(1, 2, dtype=torch.bool))
    torch.testing.assert_close(pred[0, 0], (expected + overall) / 2)
