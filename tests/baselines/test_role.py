"""The ``baseline`` role (cellgi/baselines/role.py): every registered baseline against its contract (built
from YAML, fitted, saved); the registered members predict what the fit functions they wrap fit."""

from __future__ import annotations

import pytest
import torch

from cellgi.baselines import build_baseline, fit_additive_baseline, fit_feature_baseline
from cellgi.registry import get_registry
from cellgi.testing import baseline_data, check_baseline, check_documented


@pytest.mark.parametrize("name", get_registry("baseline").names())
def test_every_registered_baseline_meets_the_contract(name):
    check_documented("baseline", name)
    check_baseline(name)


def test_components_reproduce_the_fit_functions():
    """The registered members predict what the functions they wrap fit (and ``run_baselines`` reports)."""
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
