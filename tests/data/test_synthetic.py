import time

import numpy as np
import torch

from cellgi.data.synthetic import generate_dataset, generate_graph, pair_features
from cellgi.spec.data import SyntheticSpec

PUBLISHED_PAIRS = {  # published stored counts; undirected types given as pairs (half)
    "physical": 69_731, "regulatory": 9_753, "tflink": 201_898, "string_neighborhood": 73_937,
    "string_fusion": 5_905, "string_cooccurence": 5_557, "string_coexpression": 501_269,
    "string_experimental": 412_550, "string_database": 36_909,
}


def test_generate_graph_yeast_scale_fast_exact_skewed_deterministic():
    t = time.process_time()  # CPU time: robust to a busy machine (about 1-2 s when idle)
    g = generate_graph(6607, PUBLISHED_PAIRS, {"regulatory", "tflink"}, seed=0)
    elapsed = time.process_time() - t
    assert elapsed < 10, elapsed
    total = 0
    for name, k in PUBLISHED_PAIRS.items():
        et = g.edge_types[name]
        assert et.num_pairs == k, name
        total += et.num_edges
        ei = et.edge_index
        assert not (ei[0] == ei[1]).any()
        assert torch.unique(ei, dim=1).shape[1] == et.num_edges
    assert total > 2_300_000
    deg = g.degree("physical").double()
    assert deg.max() > 10 * deg.median()  # heavy tail
    g2 = generate_graph(6607, {"physical": 69_731}, (), seed=0)
    assert torch.equal(g2.edge_index("physical"), g.edge_index("physical"))  # per-type streams
    assert g.genes[0] == "SYN0001"


def _r2(pred, y):
    return 1 - ((y - pred) ** 2).mean() / y.var()


def _ridge(x_tr, y_tr, x_te, alpha):
    a = x_tr.T @ x_tr + alpha * np.eye(x_tr.shape[1])
    w = np.linalg.solve(a, x_tr.T @ (y_tr - y_tr.mean()))
    return x_te @ w + y_tr.mean()


def test_planted_signal_needs_the_graph():
    spec = SyntheticSpec(num_genes=400, num_samples=6000, trigenic_fraction=0.0,
                         edge_types={"physical": 1500, "coexpression": 3000, "regulatory": 400},
                         directed=["regulatory"], seed=1)
    g, ds, info = generate_dataset(spec)
    g_again, ds_again, _ = generate_dataset(spec)
    assert torch.equal(ds.y, ds_again.y) and torch.equal(ds.pert_idx, ds_again.pert_idx)
    assert info["graph_var_fraction"] > 0.7
    y = ds.y[:, 0].numpy().astype(np.float64)
    pad = ds.padded().numpy()
    onehot = np.zeros((len(ds), g.num_nodes))
    np.add.at(onehot, (np.repeat(np.arange(len(ds)), 2), pad[:, :2].ravel()), 1.0)
    feats = pair_features(g, pad[:, 0], pad[:, 1])
    tr, te = slice(0, 4500), slice(4500, None)
    truth = 1 - info["noise_var_fraction"]  # R^2 of the noiseless planted rule, about 0.99
    r2_additive = _r2(_ridge(onehot[tr], y[tr], onehot[te], 1.0), y[te])
    both = np.concatenate([onehot, 5 * feats], 1)  # the same gene terms plus graph features
    r2_graph = _r2(_ridge(both[tr], y[tr], both[te], 1.0), y[te])
    assert r2_additive < truth - 0.4, (r2_additive, truth)
    assert r2_graph > r2_additive + 0.25, (r2_graph, r2_additive)


def test_trigenic_samples_and_targets():
    spec = SyntheticSpec(num_genes=200, num_samples=500, trigenic_fraction=0.4,
                         edge_types={"a": 600}, directed=[], seed=0)
    _, ds, _ = generate_dataset(spec, target_names=["gene_interaction", "fitness"])
    assert ds.kind_counts() == {"digenic": 300, "trigenic": 200, "other": 0}
    pad = ds.padded()
    assert all(len(set(r[r >= 0].tolist())) == int((r >= 0).sum()) for r in pad)
    assert torch.isfinite(ds.y).all()


def test_generate_graph_complete_and_too_many():
    import pytest

    g = generate_graph(30, {"u": 435, "d": 870}, {"d"}, seed=2)
    assert g.edge_types["u"].num_pairs == 435 and g.edge_types["d"].num_edges == 870
    with pytest.raises(ValueError, match="distinct pairs"):
        generate_graph(30, {"u": 436}, (), seed=0)
    with pytest.raises(ValueError, match="not in edge_counts"):
        generate_graph(30, {"u": 10}, {"v"}, seed=0)
