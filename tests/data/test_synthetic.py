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
    # the pairwise rule alone (multihop=0): its graph part is what pair features read directly
    spec = SyntheticSpec(num_genes=400, num_samples=6000, trigenic_fraction=0.0,
                         edge_types={"physical": 1500, "coexpression": 3000, "regulatory": 400},
                         directed=["regulatory"], seed=1, multihop=0.0, trigenic_synergy=0.0)
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


def test_multihop_term_is_hidden_from_pair_features_but_carries_the_signal():
    """The default rule: most of the signal is the diffused-field term, which neither per-gene effects nor
    the pair's own graph features (edges, shared neighbours) give, and which the field itself explains."""
    from cellgi.data.synthetic import planted_field

    spec = SyntheticSpec(num_genes=400, num_samples=6000, trigenic_fraction=0.0,
                         edge_types={"physical": 1500, "coexpression": 3000, "regulatory": 400},
                         directed=["regulatory"], seed=1)
    assert spec.multihop > 0 and spec.trigenic_synergy > 0  # the documented defaults
    g, ds, info = generate_dataset(spec)
    y = ds.y[:, 0].numpy().astype(np.float64)
    pad = ds.padded().numpy()
    onehot = np.zeros((len(ds), g.num_nodes))
    np.add.at(onehot, (np.repeat(np.arange(len(ds)), 2), pad[:, :2].ravel()), 1.0)
    seen = np.concatenate([onehot, 5 * pair_features(g, pad[:, 0], pad[:, 1])], 1)
    field = planted_field(g, spec.seed)
    dot = (field[pad[:, 0]] * field[pad[:, 1]]).sum(1, keepdims=True)
    with_field = np.concatenate([seen, 5 * dot / dot.std()], 1)
    tr, te = slice(0, 4500), slice(4500, None)
    r2_seen = _r2(_ridge(seen[tr], y[tr], seen[te], 1.0), y[te])
    r2_field = _r2(_ridge(with_field[tr], y[tr], with_field[te], 1.0), y[te])
    assert r2_seen < 0.45, r2_seen
    assert r2_field > r2_seen + 0.3, (r2_field, r2_seen)
    # several hops: the field of a gene is far from the mean field of its direct neighbours alone
    from cellgi.data.synthetic import _Union, _rng, diffused_field

    x = _rng(spec.seed, "field").standard_normal((g.num_nodes, field.shape[1]))
    one_hop = diffused_field(_Union(g), x, hops=1)
    assert np.mean([abs(np.corrcoef(field[:, d], one_hop[:, d])[0, 1]) for d in range(field.shape[1])]) < 0.9


def test_trigenic_synergy_is_not_a_sum_of_pairs():
    """With only the synergy term differing, a trigenic score changes by the triple product of the field,
    which no sum of pair terms reproduces."""
    from cellgi.data.synthetic import planted_field

    base = dict(num_genes=300, num_samples=3000, trigenic_fraction=1.0, edge_types={"a": 1200}, directed=[],
                seed=2, noise=0.0, additive=0.0)
    g, ds0, _ = generate_dataset(SyntheticSpec(**base, trigenic_synergy=0.0))
    _, ds1, _ = generate_dataset(SyntheticSpec(**base, trigenic_synergy=1.0))
    assert torch.equal(ds0.pert_idx, ds1.pert_idx)
    pad = ds1.padded().numpy()
    f = planted_field(g, 2)
    triple = (f[pad[:, 0]] * f[pad[:, 1]] * f[pad[:, 2]]).sum(1)
    y0, y1 = ds0.y[:, 0].numpy().astype(np.float64), ds1.y[:, 0].numpy().astype(np.float64)
    y0, y1 = y0 - y0.mean(), y1 - y1.mean()
    resid = y1 - (y1 @ y0) / (y0 @ y0) * y0  # what the synergy term added, beyond the pair part
    assert np.corrcoef(resid, triple)[0, 1] > 0.9
    pair_sum = sum((f[pad[:, a]] * f[pad[:, b]]).sum(1) for a, b in ((0, 1), (0, 2), (1, 2)))
    assert abs(np.corrcoef(triple, pair_sum)[0, 1]) < 0.2
