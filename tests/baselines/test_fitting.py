"""Fitting and running a spec's baselines (cellgi/baselines/fitting.py): the spec's list and its short
form, bad entries named by key, the feature trees on unseen genes, the warm start of a model's additive
term."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from cellgi.baselines import additive_alpha, fit_additive_baseline, run_baselines, warm_start_model
from cellgi.nn.model import LazyDango
from cellgi.spec import SpecError, parse_spec
from cellgi.testing import model_spec_from_yaml


def _training(text: str = "{}"):
    return parse_spec(f"name: t\ndata:\n  synthetic: {{}}\ntraining: {text}\nmodel: {{}}\n").training


@pytest.mark.parametrize("text, kinds, alpha", [
    ("{}", ["additive", "features"], 1.0),
    ("{baseline: {enabled: false}}", [], None),
    ("{baseline: {alpha: 3.0}}", ["additive", "features"], 3.0),
    ("{baseline: {alpha: 3.0}, baselines: [{type: additive}]}", ["additive"], 3.0),
    ("{baselines: [{type: features, max_iter: 10}]}", ["features"], None),
])
def test_spec_lists_baselines_and_folds_the_short_form(text, kinds, alpha):
    t = _training(text)
    assert [e.type for e in t.baselines] == kinds and t.baseline is None
    assert additive_alpha(SimpleNamespace(training=t)) == (1.0 if alpha is None else alpha)


@pytest.mark.parametrize("text, match", [
    ("{baselines: [{type: trees}]}", r"training.baselines.0.type: unknown baseline 'trees'"),
    ("{baselines: [{type: additive}, {type: additive}]}", "more than once"),
    ("{baselines: [{type: additive, alpha: 0.0}]}", r"training.baselines.0.alpha"),
    ("{baseline: {alpha: -1.0}}", r"training.baseline.alpha"),
    ("{baseline: {alpha: 2.0}, baselines: [{type: features}]}", "lists no additive baseline"),
    ("{baselines: [{type: additive}], stack: {baselines: [features]}}", r"\['features'\] not in training.baselines"),
])
def test_bad_baseline_specs_name_the_key(text, match):
    with pytest.raises(SpecError, match=match):
        _training(text)


def test_run_baselines_feature_model_scores_unseen_genes(bundle_with_features):
    b = bundle_with_features
    spec = SimpleNamespace(seed=0, training=_training())
    out = run_baselines(b, spec)
    assert set(out) == {"baseline_additive", "baseline_features"}
    assert set(out["baseline_features"]) == {k for k, v in b.splits.items() if v.numel()}
    # pairs of two unseen genes: the additive model has nothing (constant), the feature model ranks them
    assert out["baseline_features"]["test_two_unseen"]["pearson"] > 0.5
    assert out["baseline_features"]["test"]["pearson"] > out["baseline_additive"]["test"]["pearson"] + 0.2
    assert "baseline_features" not in run_baselines(b, spec, features=False)


def _model_with_additive(b, additive: str):
    """A small model on ``b``'s graph and features with the given ``additive_term`` (YAML flow mapping)."""
    text = ("hidden_dim: 8\nnum_layers: 1\nlocal_predictor: {type: hypergraph_attention, num_heads: 2}\n"
            f"additive_term: {additive}\n")
    return LazyDango.from_spec(model_spec_from_yaml(text), b.graph, 1, node_features=b.gene_features,
                               feature_names=b.feature_names)


def test_warm_start_puts_the_ridge_fit_into_pair_values_gene_bias(bundle_with_features):
    b = bundle_with_features
    model = _model_with_additive(b, "{type: pair_values, gene_values: [t.f], gene_bias: true}")
    last = [m for m in model.additive_term.mlp.modules() if isinstance(m, torch.nn.Linear)][-1]
    before = last.bias.detach().clone()
    assert warm_start_model(model, b, alpha=1.0)
    ridge = fit_additive_baseline(b.dataset, b.splits["train"], alpha=1.0, y=b.normalizer.transform(b.dataset.y))
    torch.testing.assert_close(model.additive_term.bias.detach(), ridge.coef.float())
    torch.testing.assert_close(last.bias.detach(), before + ridge.intercept.float())
    unseen = torch.ones(b.dataset.num_genes, dtype=torch.bool)
    unseen[b.dataset.subset(b.splits["train"]).pert_idx] = False
    assert unseen.any() and (model.additive_term.bias.detach()[unseen] == 0).all()
    # zero init, or a term that does not ask: nothing happens
    for additive in ("{type: pair_values, gene_values: [t.f], gene_bias: true, gene_bias_init: zero}",
                     "{type: gene_mlp}"):
        assert not warm_start_model(_model_with_additive(b, additive), b)


def test_warm_start_gives_pair_values_the_memory_of_the_training_split(bundle_with_features):
    b = bundle_with_features
    model = _model_with_additive(b, "{type: pair_values, gene_values: [t.f], partner_memory: 0.3}")
    assert warm_start_model(model, b) == [f"a memory of the {b.splits['train'].numel():,} training samples"]
    term = model.additive_term
    train = b.dataset.subset(b.splits["train"])
    assert term.mem_y.shape[0] == train.pert_idx.numel()  # one entry per (gene, training sample)
    # every remembered score is a training score; no validation or test score is in the memory
    yn = b.normalizer.transform(b.dataset.y)[:, 0]
    train_scores = set(yn[b.splits["train"]].tolist())
    assert set(term.mem_y[:, 0].tolist()) <= train_scores
    held = torch.cat([b.splits["val"], b.splits["test"]])
    assert not (set(yn[held].tolist()) - train_scores) & set(term.mem_y[:, 0].tolist())
