"""InteractionMetrics against direct reference computations."""

from __future__ import annotations

import math

import pytest
import torch

from cellgi.metrics import InteractionMetrics, is_interaction_target


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


# ------------------------------------------------------------------ exactness against scipy / sklearn
def _screen_like(n: int, seed: int, neutral: float = 0.8):
    """A screen like Costanzo's: most pairs neutral at exactly 0 (heavy ties), predictions with ties too."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(n, generator=g) * 0.1
    y[torch.rand(n, generator=g) < neutral] = 0.0
    pred = 0.5 * y + 0.05 * torch.randn(n, generator=g)
    pred[torch.rand(n, generator=g) < 0.1] = 0.0  # tied predictions as well
    return pred, y


def test_heavy_ties_match_scipy_at_screen_scale():
    """150,000 pairs, 80% at exactly 0: torchmetrics' SpearmanCorrCoef sums tied ranks in int32 and
    overflows here (a wrong, even negative, train Spearman); ours equals scipy's."""
    from scipy.stats import pearsonr, spearmanr

    pred, y = _screen_like(150_000, 3)
    m = InteractionMetrics(["gene_interaction"], sync=False)
    for lo in range(0, pred.numel(), 4096):
        m.update(pred[lo : lo + 4096], y[lo : lo + 4096])
    out = m.compute()
    assert out["spearman"] == pytest.approx(spearmanr(pred.numpy(), y.numpy()).statistic, abs=1e-12)
    assert out["pearson"] == pytest.approx(pearsonr(pred.double().numpy(), y.double().numpy()).statistic, abs=1e-12)
    assert out["spearman"] > 0.2  # positively related data: a positive rank correlation


def test_average_ranks_are_scipy_rankdata():
    from scipy.stats import rankdata

    from cellgi.metrics import average_ranks

    x = torch.tensor([0.0, 0.3, 0.0, -0.2, 0.3, 0.0, 1.0])
    assert average_ranks(x).tolist() == rankdata(x.numpy(), method="average").tolist()


def test_classification_metrics_match_sklearn_and_neutral_is_no_example():
    from sklearn.metrics import average_precision_score, roc_auc_score

    pred, y = _screen_like(20_000, 4)
    m = InteractionMetrics(["gene_interaction"], sync=False)
    m.update(pred, y)
    out = m.compute()
    p, t = pred.double().numpy(), y.double().numpy()
    for cls, label, score in (
        ("neg", t < -0.08, -p), ("neg_stringent", t < -0.12, -p), ("pos", t > 0.08, p), ("pos_stringent", t > 0.16, p)
    ):
        assert out[f"auprc_{cls}"] == pytest.approx(average_precision_score(label, score), abs=1e-12)
        assert out[f"auroc_{cls}"] == pytest.approx(roc_auc_score(label, score), abs=1e-12)
        assert out[f"prevalence_{cls}"] == pytest.approx(label.mean(), abs=1e-12)
    # the 80% neutral pairs are non-examples of both classes: the prevalences are small
    assert out["prevalence_neg"] + out["prevalence_pos"] < 0.2
    assert out["prevalence_neg_stringent"] < out["prevalence_neg"]
    # a neutral pair alone is a negative example for both classes: every class metric is undefined
    only0 = InteractionMetrics(["gene_interaction"], sync=False)
    only0.update(torch.tensor([0.1, -0.1, 0.0]), torch.zeros(3))
    o = only0.compute()
    assert o["prevalence_neg"] == 0 and o["prevalence_pos"] == 0
    assert math.isnan(o["auprc_neg"]) and math.isnan(o["auroc_pos"])


def test_weights_equal_replicated_rows():
    """A sample of weight k counts as k copies: every metric equals the replicated set's, ties included."""
    pred, y = _screen_like(3_000, 5)
    g = torch.Generator().manual_seed(6)
    w = torch.randint(0, 4, (pred.numel(),), generator=g)  # 0: left out
    weighted = InteractionMetrics(["gene_interaction"], sync=False)
    for lo in range(0, pred.numel(), 500):
        weighted.update(pred[lo : lo + 500], y[lo : lo + 500], weight=w[lo : lo + 500].float())
    rep = InteractionMetrics(["gene_interaction"], sync=False)
    rep.update(pred.repeat_interleave(w), y.repeat_interleave(w))
    a, b = weighted.compute(), rep.compute()
    assert a["n"] == int((w > 0).sum()) and b["n"] == int(w.sum())
    for k in a:
        if k not in ("n", "n_strong"):
            assert a[k] == pytest.approx(b[k], abs=1e-9), k


def test_weighted_false_ignores_weights_and_bad_weights_are_errors():
    from cellgi.spec.training import MetricsSpec

    pred, y = _screen_like(500, 7)
    w = torch.rand(500) + 0.5
    plain = InteractionMetrics(["gene_interaction"], spec=MetricsSpec(weighted=False), sync=False)
    plain.update(pred, y, weight=w)
    ref = InteractionMetrics(["gene_interaction"], sync=False)
    ref.update(pred, y)
    assert plain.compute() == pytest.approx(ref.compute(), nan_ok=True)
    ref.update(pred, y, weight=-w)
    with pytest.raises(ValueError, match="non-negative"):
        ref.compute()


def test_thresholds_come_from_the_spec():
    from cellgi.spec.training import MetricsSpec

    y = torch.tensor([-0.5, -0.2, -0.1, 0.0, 0.1, 0.2, 0.5])
    spec = MetricsSpec(negative_threshold=-0.15, negative_stringent_threshold=-0.3,
                       positive_threshold=0.15, positive_stringent_threshold=0.3)
    m = InteractionMetrics.from_spec(["gene_interaction"], spec, sync=False)
    m.update(y, y)
    out = m.compute()
    assert out["prevalence_neg"] == pytest.approx(2 / 7) and out["prevalence_neg_stringent"] == pytest.approx(1 / 7)
    assert out["prevalence_pos"] == pytest.approx(2 / 7) and out["auprc_neg"] == 1.0 and out["auroc_pos"] == 1.0
    with pytest.raises(ValueError, match="negative_stringent_threshold"):
        MetricsSpec(negative_threshold=-0.2, negative_stringent_threshold=-0.1)


def test_weighted_curves_match_sklearn_sample_weight():
    from sklearn.metrics import average_precision_score, roc_auc_score

    from cellgi.metrics import weighted_auroc, weighted_average_precision

    g = torch.Generator().manual_seed(8)
    score = torch.randint(0, 50, (4_000,), generator=g).double() / 50  # many tied scores
    label = (torch.rand(4_000, generator=g) < 0.1 + 0.5 * score).double()
    w = torch.rand(4_000, generator=g) * 3
    assert weighted_average_precision(score, label, w) == pytest.approx(
        average_precision_score(label.numpy(), score.numpy(), sample_weight=w.numpy()), abs=1e-12)
    assert weighted_auroc(score, label, w) == pytest.approx(
        roc_auc_score(label.numpy(), score.numpy(), sample_weight=w.numpy()), abs=1e-12)
