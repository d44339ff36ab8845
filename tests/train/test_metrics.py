"""InteractionMetrics against direct reference computations."""

from __future__ import annotations

import math

import pytest
import torch

from cellgi.train.metrics import InteractionMetrics, is_interaction_target


def _pearson(x, y):
    x, y = x.double() - x.double().mean(), y.double() - y.double().mean()
    return float((x * y).sum() / (x.norm() * y.norm()))


def _ranks(v):
    order = torch.argsort(v)
    r = torch.empty_like(v, dtype=torch.float64)
    r[order] = torch.arange(1, v.numel() + 1, dtype=torch.float64)
    return r


def _auroc(score, label):
    pos, neg = score[label], score[~label]
    greater = (pos.unsqueeze(1) > neg.unsqueeze(0)).double().sum()
    ties = (pos.unsqueeze(1) == neg.unsqueeze(0)).double().sum()
    return float((greater + 0.5 * ties) / (pos.numel() * neg.numel()))


def _average_precision(score, label):
    order = torch.argsort(score, descending=True)
    lab = label[order].double()
    tp = torch.cumsum(lab, 0)
    precision = tp / torch.arange(1, lab.numel() + 1, dtype=torch.float64)
    return float((precision * lab).sum() / lab.sum())


def test_interaction_target_names():
    assert is_interaction_target("gene_interaction")
    assert is_interaction_target("epsilon") and is_interaction_target("tau_trigenic")
    assert not is_interaction_target("fitness")


def test_single_target_matches_reference():
    g = torch.Generator().manual_seed(1)
    y = torch.randn(300, generator=g) * 0.1
    pred = y + torch.randn(300, generator=g) * 0.05
    y[::17] = float("nan")  # unmeasured rows are left out
    m = InteractionMetrics(["gene_interaction"], strong_threshold=0.08)
    for lo in range(0, 300, 64):  # several updates, as batches
        m.update(pred[lo : lo + 64, None], y[lo : lo + 64, None])
    out = m.compute()
    ok = ~torch.isnan(y)
    p, t = pred[ok].double(), y[ok].double()
    assert out["n"] == ok.sum()
    assert out["mse"] == pytest.approx(float(((p - t) ** 2).mean()), rel=1e-9)
    assert out["mae"] == pytest.approx(float((p - t).abs().mean()), rel=1e-9)
    assert out["pearson"] == pytest.approx(_pearson(p, t), abs=1e-9)
    assert out["spearman"] == pytest.approx(_pearson(_ranks(p), _ranks(t)), abs=1e-5)
    strong = t.abs() > 0.08
    assert out["n_strong"] == strong.sum()
    assert out["strong_prevalence"] == pytest.approx(float(strong.double().mean()))
    assert out["strong_pearson"] == pytest.approx(_pearson(p[strong], t[strong]), abs=1e-9)
    assert out["strong_auroc"] == pytest.approx(_auroc(p.abs(), strong), abs=1e-6)
    assert out["strong_auprc"] == pytest.approx(_average_precision(p.abs(), strong), abs=1e-6)


def test_multi_target_keys_and_means():
    g = torch.Generator().manual_seed(2)
    y = torch.randn(100, 2, generator=g) * 0.1
    pred = y + 0.05 * torch.randn(100, 2, generator=g)
    m = InteractionMetrics(["gene_interaction", "fitness"])
    m.update(pred, y)
    out = m.compute()
    assert "gene_interaction/strong_auroc" in out
    assert "fitness/pearson" in out and "fitness/strong_auroc" not in out  # fitness is no interaction
    assert out["pearson"] == pytest.approx((out["gene_interaction/pearson"] + out["fitness/pearson"]) / 2)
    assert out["n"] == 200
    assert out["strong_auroc"] == pytest.approx(out["gene_interaction/strong_auroc"])


def test_undefined_metrics_are_nan():
    m = InteractionMetrics(["gene_interaction"], strong_threshold=10.0)  # nothing is strong
    m.update(torch.tensor([[0.1], [0.2], [0.3]]), torch.tensor([[0.1], [0.3], [0.2]]))
    out = m.compute()
    assert math.isnan(out["strong_pearson"]) and math.isnan(out["strong_auroc"])
    assert out["n_strong"] == 0 and out["pearson"] == pytest.approx(0.5)
    empty = InteractionMetrics(["gene_interaction"]).compute()
    assert empty["n"] == 0 and math.isnan(empty["pearson"])


def test_shape_mismatch_is_an_error():
    m = InteractionMetrics(["a", "b"])
    with pytest.raises(ValueError, match="pred and target"):
        m.update(torch.zeros(4, 1), torch.zeros(4, 1))
