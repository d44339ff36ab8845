"""The feature trees (cellgi/baselines/trees.py) stored as node arrays."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.ensemble import HistGradientBoostingRegressor

from cellgi.baselines import FeatureBaseline, TreeArrays


def test_tree_arrays_predict_as_the_fitted_trees_after_a_weights_only_round_trip(tmp_path):
    """A run folder stores the feature baseline's trees as tensors (no pickled code): same predictions,
    missing values included."""
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
