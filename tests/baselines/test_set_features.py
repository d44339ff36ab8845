"""The set features of the feature trees (cellgi/baselines/features.py): named, finite, the same whatever
order a set's genes come in."""

from __future__ import annotations

import numpy as np

from cellgi.baselines import set_features
from cellgi.data.perturbations import PerturbationDataset


def test_set_features_are_order_invariant_and_named(bundle_with_features):
    b = bundle_with_features
    x, names = set_features(b)
    assert x.shape == (len(b.dataset), len(names)) and np.isfinite(x).all()
    assert {"mean.t.f", "min.t.f", "max.t.f", "pair_mean.edge.ppi", "pair_max.shared.ppi", "set_size"} <= set(names)
    flipped = PerturbationDataset.from_sets([ds[::-1] for ds in ([[a, b] for a in range(40) for b in range(a + 1, 40)])],
                                            b.dataset.y, ["gene_interaction"], 40)
    x2, _ = set_features(type(b)(**{**vars(b), "dataset": flipped}))
    np.testing.assert_allclose(x, x2, rtol=1e-6)
