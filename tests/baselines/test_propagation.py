"""The ``propagation`` baseline (cellgi/baselines/propagation.py): the propagated screen by hand, symmetry, and
that it scores unscreened genes from their screened neighbours where the feature trees cannot."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cellgi.data.cellgraph import CellGraph
from cellgi.data.perturbations import PerturbationDataset
from cellgi.baselines import BaselineContext, BaselineData, FeatureTreesBaseline
from cellgi.baselines.propagation import PropagationTreesBaseline, ScreenPropagation


def _graph(n: int, edges: list[tuple[int, int]], name: str = "g") -> CellGraph:
    ei = torch.tensor(edges, dtype=torch.long).t()
    return CellGraph.from_edges([f"G{i}" for i in range(n)], [(name, ei, False)])


def test_propagated_value_by_hand():
    # genes 0..4; graph edges 1-2 and 1-3 (2 and 3 are neighbours of 1); screened pairs (0,2)=-1, (0,3)=+2
    graph = _graph(5, [(1, 2), (1, 3)])
    pairs = torch.tensor([[0, 2], [0, 3]])
    vals = torch.tensor([[-1.0], [2.0]])
    prop = ScreenPropagation(graph, pairs, vals, torch.tensor([0.0]))
    names = prop.names
    f = prop(torch.tensor([[0, 1]]), torch.tensor([[True, True]]))[0, : len(names)]
    got = dict(zip(names, f.tolist()))
    # 1's neighbours {2, 3}, each half the weight: negative part (-1 + 0) / 2, positive part (0 + 2) / 2
    assert got["prop_neg.g.min"] == pytest.approx(-0.5)
    assert got["prop_pos.g.max"] == pytest.approx(1.0)
    # gene 0's hubness: mean negative part over its two pairs; gene 1 was never screened
    assert got["hub_neg.min"] == got["hub_neg.max"] == pytest.approx(-0.5)
    assert got["screened_genes"] == 1
    # (1, 0) is the same pair
    g = prop(torch.tensor([[1, 0]]), torch.tensor([[True, True]]))[0, : len(names)]
    np.testing.assert_array_equal(np.nan_to_num(f, nan=9.0), np.nan_to_num(g, nan=9.0))


def test_a_pair_of_genes_nobody_screened_has_no_propagated_value():
    graph = _graph(6, [(1, 2), (4, 5)])
    prop = ScreenPropagation(graph, torch.tensor([[0, 2]]), torch.tensor([[-1.0]]), torch.tensor([0.0]))
    f = prop(torch.tensor([[4, 5]]), torch.tensor([[True, True]]))
    d = len(prop.names)
    assert f[0, 0] == 0 and np.isnan(f[0, 1:d]).all()


def _modules(seed: int = 0):
    """60 genes in 6 modules (dense inside, nothing between); genes of modules 0 and 1 interact negatively
    with each other, the rest are neutral. Per-gene inputs are noise: only the graph says who is in which
    module, and only the screen says which modules interact."""
    rng = np.random.default_rng(seed)
    n, k = 60, 6
    module = np.arange(n) % k
    edges = [(i, j) for i in range(n) for j in range(i + 1, n) if module[i] == module[j] and rng.random() < 0.5]
    graph = _graph(n, edges)
    sets, y = [], []
    for i in range(n):
        for j in range(i + 1, n):
            sets.append([i, j])
            hit = {module[i], module[j]} == {0, 1}
            y.append([(-1.0 if hit else 0.0) + 0.05 * rng.standard_normal()])
    y = torch.tensor(y, dtype=torch.float32)
    ds = PerturbationDataset.from_sets(sets, y, ["gene_interaction"], n)
    test_genes = torch.tensor(rng.choice(n, 12, replace=False))
    val_genes = torch.tensor([g for g in rng.permutation(n) if g not in set(test_genes.tolist())][:6])
    s = torch.tensor(sets)
    in_test = torch.isin(s, test_genes).any(1)
    in_val = torch.isin(s, val_genes).any(1) & ~in_test
    splits = {"train": (~in_test & ~in_val).nonzero().flatten(), "val": in_val.nonzero().flatten(),
              "test": in_test.nonzero().flatten()}
    feats = torch.from_numpy(rng.standard_normal((n, 2)).astype(np.float32))
    ctx = BaselineContext(graph, feats, ["noise.a", "noise.b"], 1)
    return BaselineData(ds, splits, y, ctx, seed)


def test_scores_unscreened_genes_from_their_screened_neighbours():
    data = _modules()
    te = data.splits["test"]
    truth = data.y[te, 0].numpy()
    prop = PropagationTreesBaseline(min_samples_leaf=5, context=data.context)
    info = prop.fit(data)
    assert info["known_pairs"] == data.splits["train"].numel()
    trees = FeatureTreesBaseline(context=data.context)
    trees.fit(data)
    r_prop = np.corrcoef(prop.predict_samples(data, te)[:, 0].numpy(), truth)[0, 1]
    r_trees = np.corrcoef(trees.predict_samples(data, te)[:, 0].numpy(), truth)[0, 1]
    assert r_prop > 0.8, r_prop
    assert r_prop > r_trees + 0.2, (r_prop, r_trees)


def test_state_dict_round_trip_and_unknown_graph():
    data = _modules(1)
    b = PropagationTreesBaseline(min_samples_leaf=5, max_iter=20, context=data.context)
    b.fit(data)
    c = PropagationTreesBaseline(min_samples_leaf=5, max_iter=20, context=data.context)
    c.load_state_dict(b.state_dict())
    te = data.splits["test"]
    torch.testing.assert_close(b.predict_samples(data, te), c.predict_samples(data, te))
    with pytest.raises(ValueError, match="not graphs of this run"):
        PropagationTreesBaseline(graphs=["nope"], context=data.context)


def test_a_graph_the_run_lacks_is_a_named_component_error():
    """Built through the registry (as a run builds its baselines), the refusal names the role and the
    component and is a CellgiError, so the command line prints one line, not a traceback."""
    from cellgi.errors import CellgiError
    from cellgi.registry import get_registry

    data = _modules(2)
    with pytest.raises(CellgiError, match=r"baseline 'propagation': propagation.graphs names \['nope'\]"):
        get_registry("baseline").build({"type": "propagation", "graphs": ["nope"]}, context=data.context)


def _brute_two_hop(n: int, edges: list[tuple[int, int, float]], pairs: np.ndarray, vals: np.ndarray):
    """``(P E P^T) / (P O P^T)`` over all ``n`` genes, dense, per part: the definition, by hand."""
    adj = np.zeros((n, n))
    for i, j, w in edges:
        adj[i, j] = adj[j, i] = max(adj[i, j], w)
    np.fill_diagonal(adj, 0)
    deg = adj.sum(1)
    p = adj / np.where(deg > 0, deg, 1)[:, None]
    o = np.zeros((n, n))
    o[pairs[:, 0], pairs[:, 1]] = o[pairs[:, 1], pairs[:, 0]] = 1
    out = {}
    for part, v in (("neg", np.minimum(vals, 0)), ("pos", np.maximum(vals, 0)), ("hit", (vals < 0) * 1.0)):
        e = np.zeros((n, n))
        e[pairs[:, 0], pairs[:, 1]] = e[pairs[:, 1], pairs[:, 0]] = v
        num, den = p @ e @ p.T, p @ o @ p.T
        with np.errstate(invalid="ignore", divide="ignore"):
            out[part] = np.where(den > 0, num / den, np.nan)
    return out


def test_two_hop_terms_equal_the_dense_definition():
    rng = np.random.default_rng(3)
    n = 40
    edges = [(i, j, float(rng.uniform(0.2, 2.0))) for i in range(n) for j in range(i + 1, n) if rng.random() < 0.12]
    screened = np.arange(25)  # genes 25..39 never screened
    all_pairs = np.array([(i, j) for i in screened for j in screened if i < j])
    pairs = all_pairs[rng.random(len(all_pairs)) < 0.6]
    vals = np.where(rng.random(len(pairs)) < 0.3, rng.normal(0, 1, len(pairs)), 0.0)
    ei = torch.tensor([(i, j) for i, j, _ in edges]).t()
    graph = CellGraph.from_edges([f"G{i}" for i in range(n)],
                                 [("g", ei, False, torch.tensor([w for *_, w in edges]))])
    prop = ScreenPropagation(graph, torch.from_numpy(pairs), torch.from_numpy(vals[:, None]), torch.tensor([0.0]),
                             two_hop=["neg", "pos", "hit"])
    want = _brute_two_hop(n, edges, pairs, vals)
    a, b = np.triu_indices(n, 1)
    got = prop(torch.from_numpy(np.stack([a, b], 1)), torch.ones(a.size, 2, dtype=torch.bool))
    names = prop.names
    for part in ("neg", "pos", "hit"):
        g = got[:, names.index(f"two_hop_{part}.g")]
        w = want[part][a, b]
        np.testing.assert_array_equal(np.isnan(g), np.isnan(w))
        np.testing.assert_allclose(g[~np.isnan(g)], w[~np.isnan(w)], rtol=2e-3, atol=2e-3)
    # pairs of two unscreened genes get the term where both have screened neighbours
    both_new = (a >= 25) & (b >= 25)
    assert np.isfinite(got[both_new, names.index("two_hop_hit.g")]).any()
    # symmetric: (b, a) gives the same bits
    rev = prop(torch.from_numpy(np.stack([b, a], 1)), torch.ones(a.size, 2, dtype=torch.bool))
    np.testing.assert_array_equal(np.nan_to_num(got, nan=9.0), np.nan_to_num(rev, nan=9.0))
    # without two_hop the columns are absent; a part that does not exist is refused
    assert not any("two_hop" in x for x in ScreenPropagation(graph, torch.from_numpy(pairs),
                                                             torch.from_numpy(vals[:, None]), torch.tensor([0.0])).names)
    from pydantic import ValidationError

    from cellgi.baselines.propagation import PropagationParams

    with pytest.raises(ValidationError, match="two_hop"):
        PropagationParams(two_hop=["nope"])
    with pytest.raises(ValueError, match="two_hop names parts"):
        ScreenPropagation(graph, torch.from_numpy(pairs), torch.from_numpy(vals[:, None]), torch.tensor([0.0]),
                          two_hop=["nope"])


def test_cross_fitting_hides_each_training_row_gene_from_its_own_features(monkeypatch):
    """Every training row's features come from a propagation that never saw one of its genes (the gene of
    the inner fold the row belongs to): no known pair of that gene, one-hop and two-hop terms alike. The
    validation rows get the propagation of every training pair."""
    data = _modules(4)
    b = PropagationTreesBaseline(min_samples_leaf=5, max_iter=20, inner_folds=4, context=data.context)
    seen: list[tuple[np.ndarray, ScreenPropagation, np.ndarray]] = []
    built = b._propagation
    features = b._features

    def propagation(pairs, values, center):
        prop = built(pairs, values, center)
        prop.known_pairs = torch.as_tensor(pairs).numpy()  # recorded for the check below
        return prop

    def record(padded, mask, prop):
        seen.append((padded.numpy(), prop))
        return features(padded, mask, prop)

    monkeypatch.setattr(b, "_propagation", propagation)
    monkeypatch.setattr(b, "_features", record)
    b.fit(data)
    inner, final = seen[:4], seen[4:]
    assert len(inner) == 4 and final
    rows = 0
    for padded, prop in inner:
        known = set(map(tuple, np.sort(prop.known_pairs, 1).tolist()))
        hidden = prop.col[padded] < 0  # [R, 2]: genes the propagation never saw
        assert hidden.any(1).all()
        assert not any(tuple(sorted(r)) in known for r in padded[:, :2].tolist())
        for row, h in zip(padded, hidden):
            for g in row[h]:
                assert not (prop.known_pairs == g).any()
        rows += padded.shape[0]
    assert rows > 0
    _, prop = final[0]
    assert prop.known_pairs.shape[0] == data.splits["train"].numel()


def test_two_hop_state_saved_and_read_weights_only(tmp_path):
    """The fitted baseline's state (what a stack file holds for it) is tensors and plain containers: read
    back with ``torch.load(weights_only=True)``, a fresh baseline predicts the same."""
    data = _modules(5)
    b = PropagationTreesBaseline(min_samples_leaf=5, max_iter=20, two_hop=["hit"], context=data.context)
    b.fit(data)
    torch.save(b.state_dict(), tmp_path / "state.pt")
    c = PropagationTreesBaseline(min_samples_leaf=5, max_iter=20, two_hop=["hit"], context=data.context)
    c.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    te = data.splits["test"]
    torch.testing.assert_close(b.predict_samples(data, te), c.predict_samples(data, te))
    assert any("two_hop_hit" in n for n in c._fit().feature_names)
    # the fitted state decides which two-hop terms are computed; a state from before them (no "two_hop"
    # key: a run folder written earlier) loads as one hop only
    d = PropagationTreesBaseline(min_samples_leaf=5, max_iter=20, context=data.context)
    d.load_state_dict(b.state_dict())
    torch.testing.assert_close(b.predict_samples(data, te), d.predict_samples(data, te))
    one = PropagationTreesBaseline(min_samples_leaf=5, max_iter=20, two_hop=[], context=data.context)
    one.fit(data)
    old = {k: v for k, v in one.state_dict().items() if k != "two_hop"}
    e = PropagationTreesBaseline(min_samples_leaf=5, max_iter=20, context=data.context)
    e.load_state_dict(old)
    assert e.two_hop == []
    torch.testing.assert_close(one.predict_samples(data, te), e.predict_samples(data, te))


def test_profile_terms_equal_the_dense_definition():
    """The profile terms (module docstring) against a full eigendecomposition of the centred negative marks,
    by hand: per graph and mixed over graphs, own profile against neighbours, cosine; symmetric in the pair,
    NaN where a gene has no screened neighbour, and absent with ``profile=0``."""
    rng = np.random.default_rng(7)
    n, r = 40, 4
    screened = np.arange(28)
    all_pairs = np.array([(i, j) for i in screened for j in screened if i < j])
    pairs = all_pairs[rng.random(len(all_pairs)) < 0.7]
    vals = np.where(rng.random(len(pairs)) < 0.25, -1.0, 0.0)
    edge_sets = {k: [(i, j) for i in range(n) for j in range(i + 1, n) if rng.random() < p]
                 for k, p in (("g", 0.1), ("h", 0.05))}
    graph = CellGraph.from_edges([f"G{i}" for i in range(n)],
                                 [(k, torch.tensor(e).t(), False) for k, e in edge_sets.items()])
    prop = ScreenPropagation(graph, torch.from_numpy(pairs), torch.from_numpy(vals[:, None]), torch.tensor([0.0]),
                             profile=r)
    # the definition, dense, over the screened genes (all of 0..27 appear in some pair here)
    g = screened.size
    hit, obs = np.zeros((g, g)), np.zeros((g, g))
    hit[pairs[:, 0], pairs[:, 1]] = hit[pairs[:, 1], pairs[:, 0]] = vals < 0
    obs[pairs[:, 0], pairs[:, 1]] = obs[pairs[:, 1], pairs[:, 0]] = 1
    lam, q = np.linalg.eigh(hit - hit.sum() / obs.sum() * obs)
    top = np.argsort(-np.abs(lam))[:r]
    lam, q = lam[top], q[:, top]
    own = np.zeros((n, r))
    own[screened] = q
    z, cov = {}, {}
    for k, e in edge_sets.items():
        adj = np.zeros((n, n))
        for i, j in e:
            adj[i, j] = adj[j, i] = 1
        nb = adj[:, screened]
        cnt = nb.sum(1)
        z[k], cov[k] = (nb @ q) / np.where(cnt > 0, cnt, 1)[:, None], cnt > 0
    c = np.stack([cov[k] for k in edge_sets]).astype(float)
    z["mix"] = np.einsum("knr,kn->nr", np.stack([z[k] for k in edge_sets]), c) / np.maximum(c.sum(0), 1)[:, None]
    cov["mix"] = c.sum(0) > 0
    a, b = np.triu_indices(n, 1)
    got = prop(torch.from_numpy(np.stack([a, b], 1)), torch.ones(a.size, 2, dtype=torch.bool))
    names = prop.names

    def col(name):
        return got[:, names.index(name)]

    for k in [*edge_sets, "mix"]:
        want = np.where(cov[k][a] & cov[k][b], np.einsum("mr,r,mr->m", z[k][a], lam, z[k][b]), np.nan)
        np.testing.assert_array_equal(np.isnan(col(f"profile.{k}")), np.isnan(want))
        np.testing.assert_allclose(col(f"profile.{k}")[~np.isnan(want)], want[~np.isnan(want)], rtol=1e-3, atol=1e-5)
    sa, sb = a < g, b < g
    one_a = np.where(sa & cov["mix"][b], np.einsum("mr,r,mr->m", own[a], lam, z["mix"][b]), np.nan)
    one_b = np.where(sb & cov["mix"][a], np.einsum("mr,r,mr->m", own[b], lam, z["mix"][a]), np.nan)
    want = np.fmax(one_a, one_b)
    np.testing.assert_array_equal(np.isnan(col("profile.own_vs_neighbours")), np.isnan(want))
    np.testing.assert_allclose(col("profile.own_vs_neighbours")[~np.isnan(want)], want[~np.isnan(want)],
                               rtol=1e-3, atol=1e-5)
    s = np.sqrt(np.abs(lam))
    za, zb = z["mix"][a] * s, z["mix"][b] * s
    nrm = np.linalg.norm(za, axis=1) * np.linalg.norm(zb, axis=1)
    want = np.where(nrm > 0, (za * zb).sum(1) / np.where(nrm > 0, nrm, 1), np.nan)
    np.testing.assert_allclose(col("profile.cosine")[~np.isnan(want)], want[~np.isnan(want)], rtol=1e-3, atol=1e-4)
    # pairs of two unscreened genes get the mixed term where both have screened neighbours
    both_new = (a >= g) & (b >= g)
    assert np.isfinite(col("profile.mix")[both_new]).any()
    # symmetric, and the same bits on a second build (fixed start vector)
    rev = prop(torch.from_numpy(np.stack([b, a], 1)), torch.ones(a.size, 2, dtype=torch.bool))
    np.testing.assert_array_equal(np.nan_to_num(got, nan=9.0), np.nan_to_num(rev, nan=9.0))
    again = ScreenPropagation(graph, torch.from_numpy(pairs), torch.from_numpy(vals[:, None]), torch.tensor([0.0]),
                              profile=r)(torch.from_numpy(np.stack([a, b], 1)), torch.ones(a.size, 2, dtype=torch.bool))
    np.testing.assert_array_equal(np.nan_to_num(got, nan=9.0), np.nan_to_num(again, nan=9.0))
    # profile=0: no such column; a negative rank is refused
    plain = ScreenPropagation(graph, torch.from_numpy(pairs), torch.from_numpy(vals[:, None]), torch.tensor([0.0]))
    assert not any(x.startswith("profile.") for x in plain.names)
    with pytest.raises(ValueError, match="profile must be"):
        ScreenPropagation(graph, torch.from_numpy(pairs), torch.from_numpy(vals[:, None]), torch.tensor([0.0]),
                          profile=-1)


def test_profile_state_saved_and_read_weights_only(tmp_path):
    """A baseline fitted with profile terms keeps its rank in its state (weights-only): a fresh baseline built
    without the option predicts the same after loading; a state from before the option loads with none."""
    data = _modules(6)
    b = PropagationTreesBaseline(min_samples_leaf=5, max_iter=20, profile=3, context=data.context)
    b.fit(data)
    assert any(n.endswith("profile.mix") for n in b._fit().feature_names)
    torch.save(b.state_dict(), tmp_path / "state.pt")
    c = PropagationTreesBaseline(min_samples_leaf=5, max_iter=20, context=data.context)
    c.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    assert c.profile == 3
    te = data.splits["test"]
    torch.testing.assert_close(b.predict_samples(data, te), c.predict_samples(data, te))
    d = PropagationTreesBaseline(min_samples_leaf=5, max_iter=20, profile=3, context=data.context)
    plain = PropagationTreesBaseline(min_samples_leaf=5, max_iter=20, context=data.context)
    plain.fit(data)
    d.load_state_dict({k: v for k, v in plain.state_dict().items() if k != "profile"})
    assert d.profile == 0
    torch.testing.assert_close(plain.predict_samples(data, te), d.predict_samples(data, te))


def test_predicted_hubness_reads_the_per_gene_inputs():
    """With ``gene_inputs``, a gene nobody screened gets the share of negative marks that trees fitted on the
    screened genes read from its inputs; a screened gene's known share is put in for the "filled" terms."""
    rng = np.random.default_rng(11)
    n = 120
    share = rng.uniform(0.0, 0.5, n)  # each gene's propensity to interact
    screened = np.arange(90)  # genes 90..119 never screened
    pairs = np.array([(i, j) for i in screened for j in screened if i < j])
    hit = rng.random(len(pairs)) < (share[pairs[:, 0]] + share[pairs[:, 1]]) / 2
    vals = np.where(hit, -1.0, 0.0)
    graph = _graph(n, [(i, i + 1) for i in range(n - 1)])
    inputs = np.stack([share, rng.normal(size=n)], 1)  # the first column tells the share, the second is noise
    prop = ScreenPropagation(graph, torch.from_numpy(pairs), torch.from_numpy(vals[:, None]), torch.tensor([0.0]),
                             gene_inputs=inputs)
    predicted, filled = prop.hub_pred[0]
    known = prop.hub[0]["hit"]
    np.testing.assert_array_equal(filled[screened], known[screened].astype(np.float32))
    np.testing.assert_array_equal(filled[90:], predicted[90:])
    # the unscreened genes' predicted shares follow their true propensity (the known shares are noisy
    # estimates of (share + mean share) / 2, so compare ranks)
    assert np.corrcoef(np.argsort(np.argsort(predicted[90:])), np.argsort(np.argsort(share[90:])))[0, 1] > 0.8
    names = prop.names
    a, b = np.array([95, 3]), np.array([100, 4])
    f = prop(torch.from_numpy(np.stack([a, b], 1)), torch.ones(2, 2, dtype=torch.bool))
    got = f[:, names.index("hub_pred.predicted.product")]
    np.testing.assert_allclose(got, predicted[a] * predicted[b], rtol=1e-6)
    np.testing.assert_allclose(f[:, names.index("hub_pred.filled.max")], np.maximum(filled[a], filled[b]))
    # without gene inputs the columns are absent
    plain = ScreenPropagation(graph, torch.from_numpy(pairs), torch.from_numpy(vals[:, None]), torch.tensor([0.0]))
    assert not any(x.startswith("hub_pred.") for x in plain.names)


def test_hub_trees_option_fits_saves_and_loads(tmp_path):
    data = _modules(8)
    b = PropagationTreesBaseline(min_samples_leaf=5, max_iter=20, hub_trees=True, context=data.context)
    b.fit(data)
    assert any("hub_pred.predicted.product" in n for n in b._fit().feature_names)
    torch.save(b.state_dict(), tmp_path / "state.pt")
    c = PropagationTreesBaseline(min_samples_leaf=5, max_iter=20, context=data.context)
    c.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    assert c.hub_trees
    te = data.splits["test"]
    torch.testing.assert_close(b.predict_samples(data, te), c.predict_samples(data, te))


def test_features_computed_in_batches_fit_and_predict_the_same(monkeypatch):
    """fit and predict compute the rows' features ``feature_batch`` rows at a time (memory); the result must
    not depend on the batch size: the same trees, the same predictions, to the bit."""
    data = _modules(9)
    te = data.splits["test"]

    def fitted(batch: int) -> tuple[PropagationTreesBaseline, torch.Tensor]:
        monkeypatch.setattr(PropagationTreesBaseline, "feature_batch", batch)
        b = PropagationTreesBaseline(min_samples_leaf=5, max_iter=20, profile=4, hub_trees=True, context=data.context)
        b.fit(data)
        return b, b.predict(*data.sets(te), batch_size=batch)

    whole, p_whole = fitted(1 << 20)
    small, p_small = fitted(7)  # several batches per inner fold, one row left over
    assert data.splits["train"].numel() > 7 * 3
    a, b = whole._fit().state_dict(), small._fit().state_dict()
    assert a["feature_names"] == b["feature_names"]
    torch.testing.assert_close(b["models"], a["models"], rtol=0, atol=0)  # every tree's node arrays
    torch.testing.assert_close(p_small, p_whole, rtol=0, atol=0)
