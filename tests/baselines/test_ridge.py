"""The per-gene additive ridge (cellgi/baselines/ridge.py) against a dense closed-form solution."""

from __future__ import annotations

import pytest
import torch

from cellgi.baselines import fit_additive_baseline
from cellgi.data.perturbations import PerturbationDataset


def _data(seed: int = 0, n: int = 30, s: int = 200):
    g = torch.Generator().manual_seed(seed)
    sets = [torch.randperm(n, generator=g)[: 2 + int(torch.rand(1, generator=g) < 0.3)].tolist() for _ in range(s)]
    y = torch.randn(s, 2, generator=g)
    y[:10, 1] = float("nan")
    w = torch.rand(s, generator=g) + 0.5
    return sets, y, w, PerturbationDataset.from_sets(sets, y, ["a", "b"], n, weight=w)


def _dense_ridge(sets, y, w, train, n, alpha):
    x = torch.zeros(len(sets), n, dtype=torch.float64)
    for i, s in enumerate(sets):
        x[i, s] = 1.0
    preds = []
    for j in range(y.shape[1]):
        rows = train[~torch.isnan(y[train, j])]
        xa = torch.cat([torch.ones(len(rows), 1, dtype=torch.float64), x[rows]], 1)
        wd = torch.diag(w[rows].double())
        pen = torch.eye(n + 1, dtype=torch.float64) * alpha
        pen[0, 0] = 0.0  # intercept not penalised
        sol = torch.linalg.solve(xa.T @ wd @ xa + pen, xa.T @ wd @ y[rows, j].double())
        preds.append(torch.cat([torch.ones(len(sets), 1, dtype=torch.float64), x], 1) @ sol)
    return torch.stack(preds, 1)


@pytest.mark.parametrize("alpha", [0.1, 1.0, 10.0])
def test_matches_dense_weighted_ridge(alpha):
    sets, y, w, ds = _data()
    train = torch.arange(150)
    model = fit_additive_baseline(ds, train, alpha=alpha)
    ref = _dense_ridge(sets, y, w, train, 30, alpha)
    assert torch.allclose(model.predict(ds), ref, atol=1e-10)
    assert model.num_train == [150, 140]


def test_weights_matter_and_can_be_ignored():
    sets, y, w, ds = _data(1)
    train = torch.arange(150)
    weighted = fit_additive_baseline(ds, train).predict(ds)
    unweighted = fit_additive_baseline(ds, train, use_weights=False).predict(ds)
    assert not torch.allclose(weighted, unweighted)
    ref = _dense_ridge(sets, y, torch.ones(len(sets)), train, 30, 1.0)
    assert torch.allclose(unweighted, ref, atol=1e-10)


def test_recovers_an_exactly_additive_signal():
    g = torch.Generator().manual_seed(3)
    n = 40
    effect = torch.randn(n, generator=g)
    sets = [torch.randperm(n, generator=g)[:2].tolist() for _ in range(600)]
    y = torch.tensor([[0.3 + effect[s].sum().item()] for s in sets])
    ds = PerturbationDataset.from_sets(sets, y, ["gene_interaction"], n)
    model = fit_additive_baseline(ds, torch.arange(500), alpha=1e-6)
    assert torch.allclose(model.predict(ds, torch.arange(500, 600)).float(), y[500:], atol=1e-4)


def test_unseen_genes_get_zero_effect_and_empty_train_is_an_error():
    ds = PerturbationDataset.from_sets([[0, 1], [1, 2], [3, 4]], torch.tensor([[1.0], [2.0], [5.0]]), ["t"], 6)
    model = fit_additive_baseline(ds, torch.tensor([0, 1]))
    assert torch.all(model.coef[3:] == 0)
    with pytest.raises(ValueError, match="at least one training sample"):
        fit_additive_baseline(ds, torch.tensor([], dtype=torch.long))
