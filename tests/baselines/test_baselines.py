"""The ``baseline`` role: every registered baseline against its contract (built from YAML, fitted, saved);
the per-gene additive ridge against a dense closed-form solution; the feature trees on unseen genes; the
spec's short form."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from cellgi.data.perturbations import PerturbationDataset
from cellgi.registry import get_registry
from cellgi.baselines import fit_additive_baseline


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


# ------------------------------------------------------------------------------- feature baseline
def _bundle_with_features(seed: int = 0):
    """Pairs of 40 genes on a random graph; the target is a function of a per-gene feature and of whether
    the pair is adjacent, so that a model of set features generalises to unseen genes."""
    from types import SimpleNamespace

    from cellgi.data.cellgraph import CellGraph, EdgeType
    from cellgi.data.normalize import TargetNormalizer
    from cellgi.data.splits import make_splits

    g = torch.Generator().manual_seed(seed)
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
    splits = make_splits(ds, "gene_folds", seed=seed, num_folds=4, fold=0, val_fraction=0.15).splits
    norm = TargetNormalizer("zscore", target_names=["gene_interaction"]).fit(ds.y[splits["train"]])
    return SimpleNamespace(graph=graph, dataset=ds, splits=splits, normalizer=norm, target_names=["gene_interaction"],
                           gene_features=f.view(n, 1), feature_names=["t.f"])


def _training(text: str = "{}"):
    from cellgi.spec import parse_spec

    return parse_spec(f"name: t\ndata:\n  synthetic: {{}}\ntraining: {text}\nmodel: {{}}\n").training


@pytest.mark.parametrize("name", get_registry("baseline").names())
def test_every_registered_baseline_meets_the_contract(name):
    from cellgi.testing import check_baseline, check_documented

    check_documented("baseline", name)
    check_baseline(name)


def test_components_reproduce_the_fit_functions():
    """The registered members predict what the functions they wrap fit (and ``run_baselines`` reports)."""
    from cellgi.testing import baseline_data
    from cellgi.baselines import build_baseline, fit_feature_baseline

    data = baseline_data()
    tr, va = data.splits["train"], data.splits["val"]
    add = build_baseline({"type": "additive", "alpha": 2.0}, data.context)
    add.fit(data)
    ref = fit_additive_baseline(data.dataset, tr, alpha=2.0, y=data.y)
    torch.testing.assert_close(add.predict_samples(data, data.splits["test"]), ref.predict(data.dataset, data.splits["test"]))
    trees = build_baseline({"type": "features", "max_leaf_nodes": 7}, data.context)
    trees.fit(data)
    x, names = data.set_features()
    ref_trees = fit_feature_baseline(x[tr.numpy()], data.y[tr], data.dataset.weight[tr], x[va.numpy()], data.y[va],
                                     feature_names=names, seed=data.seed, max_leaf_nodes=7)
    torch.testing.assert_close(trees.predict_samples(data, va), ref_trees.predict(x[va.numpy()]))


@pytest.mark.parametrize("text, kinds, alpha", [
    ("{}", ["additive", "features"], 1.0),
    ("{baseline: {enabled: false}}", [], None),
    ("{baseline: {alpha: 3.0}}", ["additive", "features"], 3.0),
    ("{baseline: {alpha: 3.0}, baselines: [{type: additive}]}", ["additive"], 3.0),
    ("{baselines: [{type: features, max_iter: 10}]}", ["features"], None),
])
def test_spec_lists_baselines_and_folds_the_short_form(text, kinds, alpha):
    from cellgi.baselines import additive_alpha

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
    from cellgi.spec import SpecError

    with pytest.raises(SpecError, match=match):
        _training(text)


def test_set_features_are_order_invariant_and_named():
    from cellgi.baselines import set_features

    b = _bundle_with_features()
    x, names = set_features(b)
    assert x.shape == (len(b.dataset), len(names)) and np.isfinite(x).all()
    assert {"mean.t.f", "min.t.f", "max.t.f", "pair_mean.edge.ppi", "pair_max.shared.ppi", "set_size"} <= set(names)
    flipped = PerturbationDataset.from_sets([ds[::-1] for ds in ([[a, b] for a in range(40) for b in range(a + 1, 40)])],
                                            b.dataset.y, ["gene_interaction"], 40)
    x2, _ = set_features(type(b)(**{**vars(b), "dataset": flipped}))
    np.testing.assert_allclose(x, x2, rtol=1e-6)


def test_run_baselines_feature_model_scores_unseen_genes():
    from types import SimpleNamespace

    from cellgi.baselines import run_baselines

    b = _bundle_with_features()
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
    from cellgi.nn.model import LazyDango
    from cellgi.testing import model_spec_from_yaml

    text = ("hidden_dim: 8\nnum_layers: 1\nlocal_predictor: {type: hypergraph_attention, num_heads: 2}\n"
            f"additive_term: {additive}\n")
    return LazyDango.from_spec(model_spec_from_yaml(text), b.graph, 1, node_features=b.gene_features,
                               feature_names=b.feature_names)


def test_warm_start_puts_the_ridge_fit_into_pair_values_gene_bias():
    from cellgi.baselines import warm_start_model

    b = _bundle_with_features()
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


def test_warm_start_gives_pair_values_the_memory_of_the_training_split():
    from cellgi.baselines import warm_start_model

    b = _bundle_with_features()
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


def test_tree_arrays_predict_as_the_fitted_trees_after_a_weights_only_round_trip(tmp_path):
    """A run folder stores the feature baseline's trees as tensors (no pickled code): same predictions,
    missing values included."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    from cellgi.baselines import FeatureBaseline, TreeArrays

    rng = np.random.default_rng(0)
    x = rng.normal(size=(1500, 5))
    x[::6, 1] = np.nan
    y = 2 * x[:, 0] + np.nan_to_num(x[:, 1]) * x[:, 2] + 0.1 * rng.normal(size=1500)
    trees = HistGradientBoostingRegressor(max_iter=60, max_leaf_nodes=15, random_state=0).fit(x, y)
    fb = FeatureBaseline([trees, None], [f"f{i}" for i in range(5)])
    torch.save(fb.state_dict(), tmp_path / "fb.pt")
    back = FeatureBaseline.from_state_dict(torch.load(tmp_path / "fb.pt", weights_only=True))
    assert all(isinstance(m, TreeArrays) for m in back.models[:1]) and back.models[1] is None
    xt = rng.normal(size=(400, 5))
    xt[::4, 1] = np.nan
    got = back.predict(xt)
    np.testing.assert_allclose(got[:, 0].numpy(), trees.predict(xt), rtol=0, atol=1e-12)
    assert torch.isnan(got[:, 1]).all()
    with pytest.raises(ValueError, match="fitted on 5 features"):
        back.predict(xt[:, :3])
