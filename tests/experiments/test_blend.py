"""The stack's blend rules (``training.stack.blend``): nnls, average, shrink, select."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cellgi.experiments.blend import BLEND_RULES, fit_blend, heldout_genes
from cellgi.predictors.stack import StackError


def _pairs(n_genes: int, rng: np.random.Generator) -> np.ndarray:
    """Every pair of ``n_genes`` validation genes: the rows' held-out genes ``[n, 2]``."""
    a, b = np.triu_indices(n_genes, 1)
    return np.stack([a, b], 1)


def _gene_effects(groups: np.ndarray, rng: np.random.Generator, sd: float) -> np.ndarray:
    """A per-gene quirk shared by every row of the gene (what makes validation rows of one gene alike)."""
    g = rng.normal(scale=sd, size=int(groups.max()) + 1)
    return g[groups].sum(1)


def test_every_rule_recovers_a_strong_known_blend_on_many_genes():
    rng = np.random.default_rng(0)
    groups = _pairs(60, rng)  # 1,770 rows
    x = rng.normal(size=(groups.shape[0], 2))
    y = 0.8 * x[:, 0] + 0.2 * x[:, 1] + 1.5 + 0.05 * rng.normal(size=groups.shape[0])
    nnls = fit_blend(x, y, groups, rule="nnls")
    assert nnls.weights == pytest.approx([0.8, 0.2], abs=0.02) and nnls.intercept == pytest.approx(1.5, abs=0.02)
    shrink = fit_blend(x, y, groups, rule="shrink")
    assert shrink.info["lambda"] == 1.0  # out of fold, the fitted blend beats the average by far
    assert shrink.weights == pytest.approx([0.8, 0.2], abs=0.02)
    select = fit_blend(x, y, groups, rule="select")
    assert select.info["chosen"] == "nnls" and select.info["bootstrap_wins"]["nnls"] >= 0.9
    assert select.weights == pytest.approx([0.8, 0.2], abs=0.02)
    avg = fit_blend(x, y, groups, rule="average")
    assert avg.weights[0] == pytest.approx(avg.weights[1])  # the plain mean, scaled
    assert avg.weights.sum() == pytest.approx(1.0, abs=0.05)


def test_select_keeps_the_best_member_when_the_other_member_is_noise():
    rng = np.random.default_rng(1)
    groups = _pairs(12, rng)  # 66 rows of 12 validation genes: a small validation split
    good = rng.normal(size=groups.shape[0])
    noise = rng.normal(size=groups.shape[0])
    y = good + _gene_effects(groups, rng, 0.7) + 0.5 * rng.normal(size=groups.shape[0])
    x = np.stack([noise, good], 1)  # the network (column 0) is the noisy one here
    nnls = fit_blend(x, y, groups, rule="nnls")
    sel = fit_blend(x, y, groups, rule="select")
    assert sel.info["best_member"] == "member1"
    assert sel.info["chosen"] == "member1" and sel.weights[0] == 0.0 and sel.weights[1] > 0
    assert nnls.weights[0] != 0.0  # least squares gives the noise a weight: what select refuses


def test_shrink_falls_back_toward_the_average_when_the_fitted_ratio_is_noise():
    rng = np.random.default_rng(2)
    groups = _pairs(10, rng)
    common = rng.normal(size=groups.shape[0])
    # two equally good, correlated members; the target's gene quirks make nnls tilt toward one of them
    x = np.stack([common + 0.6 * rng.normal(size=common.size), common + 0.6 * rng.normal(size=common.size)], 1)
    y = common + _gene_effects(groups, rng, 1.0)
    nnls = fit_blend(x, y, groups, rule="nnls")
    shrink = fit_blend(x, y, groups, rule="shrink", folds=5)
    ratio = lambda w: w[0] / w.sum()  # noqa: E731
    assert shrink.info["lambda"] < 1.0
    assert abs(ratio(shrink.weights) - 0.5) <= abs(ratio(nnls.weights) - 0.5)


def test_rows_without_held_out_genes_are_cross_fitted_one_by_one_and_bad_rows_are_left_out():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 2))
    y = 0.6 * x[:, 0] + 0.4 * x[:, 1] + 0.1 * rng.normal(size=200)
    y[:5] = np.nan
    x[5, 1] = np.inf
    fit = fit_blend(x, y, None, rule="shrink")
    assert fit.info["scored_rows"] == 194 and fit.info["heldout_genes"] == 0
    assert fit.weights == pytest.approx([0.6, 0.4], abs=0.05)
    with pytest.raises(StackError, match="validation rows"):
        fit_blend(x[:1], np.array([1.0]), rule="select")
    with pytest.raises(StackError, match="unknown blend rule"):
        fit_blend(x, y, rule="median")
    assert set(BLEND_RULES) == {"nnls", "average", "shrink", "select"}


def test_heldout_genes_are_the_genes_no_training_row_has():
    from cellgi.data.perturbations import PerturbationDataset

    sets = [[0, 1], [1, 2], [3, 4], [0, 3], [4, 5], [2]]
    ds = PerturbationDataset.from_sets(sets, torch.zeros(len(sets), 1), ["t"], num_genes=6)
    g = heldout_genes(ds, torch.tensor([2, 3, 4, 5]), torch.tensor([0, 1]))
    assert g.tolist() == [[3, 4], [-1, 3], [4, 5], [-1, -1]]


@pytest.mark.parametrize(("override", "match"), [
    ("training.stack={baselines: [features], blend: {rule: median}}", "nnls"),
    ("training.stack={baselines: [features], blend: {rule: shrink, folds: 1}}", "folds"),
    ("training.stack={baselines: [features], blend: {rule: select, confidence: 0.4}}", "confidence"),
    ("training.stack={baselines: [features], blend: {rule: select, bootstrap: 100}}", "bootstrap"),
])
def test_the_blend_option_is_validated(tmp_path, override, match):
    from cellgi.spec import SpecError, load_spec
    from tiny_specs import write_tiny_spec

    with pytest.raises(SpecError, match=match):
        load_spec(write_tiny_spec(tmp_path), [override])
    spec = load_spec(write_tiny_spec(tmp_path), ["training.stack={baselines: [features], blend: {rule: select, folds: 4}}"])
    assert spec.training.stack.blend.rule == "select" and spec.training.stack.blend.folds == 4


def test_a_gene_folds_run_stacks_with_the_shrink_rule_grouped_by_validation_genes(tmp_path):
    """``cellgi train`` with the default rule on a gene-held-out split: the validation pairs are grouped by
    their held-out genes, and ``stack.json`` says which ``lam`` the cross-fitting chose."""
    import json

    from cellgi.cli.main import main
    from cellgi.runfolder.runs import STACK_SUMMARY_FILE
    from tiny_specs import write_tiny_spec

    spec = write_tiny_spec(tmp_path, epochs=1)
    out = tmp_path / "run"
    assert main(["train", str(spec), "training.stack={baselines: [features]}",
                 "data.split={kind: gene_folds, val_fraction: 0.2}", "--run-dir", str(out), "--no-progress"]) == 0
    info = json.loads((out / STACK_SUMMARY_FILE).read_text())
    how = info["blend"]["gene_interaction"]
    assert how["rule"] == "shrink" and 0.0 <= how["lambda"] <= 1.0
    assert how["heldout_genes"] > 5 and 0 < how["scored_rows"] <= info["val_rows"]
    w = info["weights"]["gene_interaction"]
    assert all(v >= 0 for v in w.values()) and sum(w.values()) > 0


def test_shrink_never_averages_back_a_member_least_squares_drops():
    rng = np.random.default_rng(4)
    groups = _pairs(10, rng)
    good = rng.normal(size=groups.shape[0])
    y = good + _gene_effects(groups, rng, 1.0)
    x = np.stack([good, -good + 0.3 * rng.normal(size=good.size)], 1)  # the second member is harmful
    nnls = fit_blend(x, y, groups, rule="nnls")
    shrink = fit_blend(x, y, groups, rule="shrink")
    avg = fit_blend(x, y, groups, rule="average")
    assert nnls.weights[1] == 0.0 and shrink.weights[1] == 0.0
    assert shrink.info["average_over"] == [0] and 0.0 <= shrink.info["lambda"] < 1.0
    assert avg.weights[1] > 0  # the plain average would take it in


def test_heldout_genes_of_a_grid_match_those_of_its_pairs():
    from cellgi.data.batch import dataset_sets
    from cellgi.data.grid import GridDataset
    from cellgi.data.splits import make_splits

    q_genes, a_genes = torch.arange(0, 12), torch.arange(12, 30)  # 12 query x 18 array genes
    grid = GridDataset(q_genes, a_genes, 0, torch.zeros(0, dtype=torch.long), torch.zeros(0, 1), torch.zeros(1),
                       ["gene_interaction"], 40)
    splits = make_splits(grid, "gene_folds", seed=0, num_folds=3, fold=0, val_fraction=0.3,
                         shared_gene_fraction=0.2).splits
    g = heldout_genes(grid, splits["val"], splits["train"])
    p, m = dataset_sets(grid, splits["train"])
    trained = set(p[m].tolist())
    vp, vm = dataset_sets(grid, splits["val"])
    want = np.where(vm.numpy() & ~np.isin(vp.numpy(), list(trained)), vp.numpy(), -1)
    assert isinstance(grid, GridDataset) and (g == want).all() and (g >= 0).any()
