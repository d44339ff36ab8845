"""additive_term members: built from YAML, additive over genes, interaction scale starting at zero."""

from __future__ import annotations

import pytest
import torch

from cellgi.nn.additive import AdditiveTerm
from cellgi.nn.heads import HeadInput
from cellgi.nn.model import LazyDango
from cellgi.registry import get_registry
from nn_helpers import make_batch, model_spec_from_yaml, random_graph, random_sets


#: every member as a spec writes it; the per-gene members are sums over genes, the pair members over pairs
MEMBERS = {
    "gene_mlp": ("{type: gene_mlp}", "gene"),
    "pair_values": ("{type: pair_values, gene_values: ['pheno.*'], hidden_dim: 8}", "pair"),
    # the example plugin's member (plugins/cellgi-gated-sum), registered where that plugin is installed
    "value_linear": ("{type: value_linear, gene_values: ['pheno.*']}", "gene"),
}
FEATURE_NAMES = ["pheno.single", "pheno.missing", "other.x"]


def call(term, inputs, states, mask, values=None, genes=None):
    """``term`` on the heads' input the model would give it."""
    return term(HeadInput(states=states, mask=mask, inputs=inputs, values=values, genes=genes))


def test_every_registered_member_is_covered():
    assert set(get_registry("additive_term").names()) <= set(MEMBERS)


def _build(name: str, num_targets: int = 2):
    spec = model_spec_from_yaml(f"hidden_dim: 8\nnum_layers: 1\nlocal_predictor: {{type: hypergraph_attention, "
                                f"num_heads: 2}}\nadditive_term: {MEMBERS[name][0]}")
    torch.manual_seed(0)
    return LazyDango.from_spec(spec, random_graph(12), num_targets, node_features=torch.randn(12, 3),
                               feature_names=FEATURE_NAMES)


@pytest.mark.parametrize("name", get_registry("additive_term").names())
def test_member_builds_from_yaml_and_sums_over_genes_or_pairs(name):
    model = _build(name)
    assert isinstance(model.additive_term, AdditiveTerm) and torch.equal(model.additive_term.scale, torch.zeros(2))
    term = model.additive_term.eval()
    x = torch.randn(3, 3, 8)
    v = torch.randn(3, 3, model.additive_values.shape[1])
    kw = ((lambda sl: {"values": v[:, sl]}) if get_registry("additive_term").get(name).declares("uses_gene_values")
          else (lambda sl: {}))
    mask = torch.tensor([[True, True, False], [True, True, True], [True, False, False]])
    out = call(term, x, x, mask, **kw(slice(None)))
    if MEMBERS[name][1] == "gene":
        single = torch.stack([call(term, x[:, i : i + 1], x[:, i : i + 1], mask[:, i : i + 1], **kw(slice(i, i + 1)))
                              for i in range(3)]).sum(0)
        torch.testing.assert_close(out, single)  # a sum of per-gene terms, padding ignored
    else:  # the mean over the sample's pairs; padding ignored; symmetric; no pair -> 0
        pairs = [(0, 1), (0, 2), (1, 2)]
        per = {p: call(term, x[:, list(p)], x[:, list(p)], mask[:, list(p)], **kw(list(p))) for p in pairs}
        torch.testing.assert_close(out[0], per[(0, 1)][0])
        torch.testing.assert_close(out[1], sum(per[p][1] for p in pairs) / 3)
        torch.testing.assert_close(out[2], torch.zeros(2))
        flipped = call(term, x.flip(1), x.flip(1), mask.flip(1), **({"values": v.flip(1)} if kw(0) else {}))
        torch.testing.assert_close(out, flipped)
    pred, reps = model.eval()(make_batch(random_sets(12, [2, 3]), num_targets=2))
    torch.testing.assert_close(pred, reps["additive"])


def test_pair_values_reads_only_the_named_columns_and_is_trainable():
    model = _build("pair_values", num_targets=1)
    feats = model.embedding.features
    torch.testing.assert_close(model.additive_values, feats[:, :2])  # pheno.* in feature order, not other.x
    model.train()
    batch = make_batch(random_sets(12, [2, 2, 3]))
    pred, _ = model(batch)
    pred.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.additive_term.mlp.parameters())
    # the values are the model's features: changing a column the term does not read changes nothing
    before, _ = model.eval()(batch)
    model2 = LazyDango.from_spec(model.spec, random_graph(12), 1,
                                 node_features=torch.cat([feats[:, :2], feats[:, 2:] + 5], 1),
                                 feature_names=FEATURE_NAMES)
    model2.load_state_dict(model.state_dict(), strict=False)
    with torch.no_grad():
        model2.embedding.features.copy_(feats)
    after, reps = model2.eval()(batch)
    torch.testing.assert_close(before, after)


@pytest.mark.parametrize(
    ("names", "feats", "match"),
    [
        (FEATURE_NAMES, torch.randn(12, 3), None),
        (["a", "b", "c"], torch.randn(12, 3), "'pheno.\\*' matches no feature column; columns .*a, b, c"),
        (None, torch.randn(12, 3), "has no named features"),
        (None, None, "has no named features"),
    ],
)
def test_pair_values_column_errors_name_the_spec_key(names, feats, match):
    spec = model_spec_from_yaml("hidden_dim: 8\nnum_layers: 1\nlocal_predictor: {type: hypergraph_attention, "
                                "num_heads: 2}\nadditive_term: " + MEMBERS["pair_values"][0])
    build = lambda: LazyDango.from_spec(spec, random_graph(12), 1, node_features=feats, feature_names=names)  # noqa: E731
    if match is None:
        assert build().additive_values.shape == (12, 2)
    else:
        with pytest.raises(ValueError, match=f"additive_term.gene_values.*{match}" if "matches" in match else match):
            build()


def test_pair_values_gene_bias_moves_only_genes_seen_in_training():
    spec = model_spec_from_yaml("hidden_dim: 8\nnum_layers: 1\nlocal_predictor: {type: hypergraph_attention, "
                                "num_heads: 2}\nadditive_term: {type: pair_values, gene_values: [pheno.single], "
                                "gene_bias: true}")
    model = LazyDango.from_spec(spec, random_graph(12), 1, node_features=torch.randn(12, 3),
                                feature_names=FEATURE_NAMES)
    opt = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.1)
    train_sets = [torch.tensor([0, 1]), torch.tensor([2, 3, 4]), torch.tensor([1, 4])]
    for _ in range(3):
        pred, _ = model.train()(make_batch(train_sets))
        loss = (pred - 1.0).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    bias = model.additive_term.bias.detach()
    assert (bias[:5].abs() > 0).all() and torch.equal(bias[5:], torch.zeros(7, 1))
    # an unseen pair gets the MLP of its values only; a seen gene adds its own effect
    term = model.additive_term.eval()
    x = torch.zeros(1, 2, 8)
    v = model.additive_values[torch.tensor([[6, 7]])]
    no_bias = call(term, x, x, torch.ones(1, 2, dtype=torch.bool), values=v, genes=torch.tensor([[6, 7]]))
    with torch.no_grad():
        model.additive_term.bias[6] = 0.5
    torch.testing.assert_close(call(term, x, x, torch.ones(1, 2, dtype=torch.bool), values=v,
                                    genes=torch.tensor([[6, 7]])),
                               no_bias + 0.5)


def test_pair_values_needs_the_features_the_embedding_keeps():
    spec = model_spec_from_yaml("hidden_dim: 8\nnum_layers: 1\nlocal_predictor: {type: hypergraph_attention, "
                                "num_heads: 2}\nembedding: {use_features: false}\nadditive_term: "
                                + MEMBERS["pair_values"][0])
    with pytest.raises(ValueError, match="keep model.embedding.use_features true"):
        LazyDango.from_spec(spec, random_graph(12), 1, node_features=torch.randn(12, 3), feature_names=FEATURE_NAMES)


def test_pair_values_gene_profiles_stay_zero_for_unseen_genes_and_vanish_on_unseen_pairs():
    spec = model_spec_from_yaml("hidden_dim: 8\nnum_layers: 1\nlocal_predictor: {type: hypergraph_attention, "
                                "num_heads: 2}\nadditive_term: {type: pair_values, gene_values: ['pheno.*'], "
                                "hidden_dim: 8, gene_profiles: 3}")
    torch.manual_seed(0)
    model = LazyDango.from_spec(spec, random_graph(12), 2, node_features=torch.randn(12, 3),
                                feature_names=FEATURE_NAMES)
    term = model.additive_term
    assert term.profiles.shape == (12, 3) and torch.equal(term.profiles, torch.zeros(12, 3))
    opt = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.1)
    train_sets = [torch.tensor([0, 1]), torch.tensor([2, 3, 4]), torch.tensor([1, 4])]
    for _ in range(4):
        pred, _ = model.train()(make_batch(train_sets, num_targets=2))
        loss = (pred - torch.tensor([1.0, -1.0])).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    prof = term.profiles.detach()
    assert (prof[:5].abs().sum(1) > 0).all() and torch.equal(prof[5:], torch.zeros(7, 3))
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in term.partner.parameters())
    # a pair of two unseen genes: the value MLP alone; a seen gene adds its profile read against the partner
    term.eval()
    x = torch.zeros(1, 2, 8)
    mask = torch.ones(1, 2, dtype=torch.bool)
    for genes in ([6, 7], [0, 7]):
        g = torch.tensor([genes])
        v = model.additive_values[g]
        full = call(term, x, x, mask, values=v, genes=g)
        mlp_only = term.mlp(torch.cat([v.min(1).values, v.max(1).values, v.prod(1)], -1))
        if genes == [6, 7]:
            torch.testing.assert_close(full, mlp_only)
        else:
            expected = mlp_only + torch.einsum("d,dt->t", prof[0], term.partner(v[0, 1]).view(3, 2))
            torch.testing.assert_close(full, expected)


def test_pair_values_interaction_on_unseen_false_predicts_unseen_sets_by_the_term_alone():
    text = ("hidden_dim: 8\nnum_layers: 1\nlocal_predictor: {type: hypergraph_attention, num_heads: 2}\n"
            "additive_term: {type: pair_values, gene_values: ['pheno.*'], hidden_dim: 8, interaction_on_unseen: OPT}")
    feats = torch.randn(12, 3)
    models = {}
    for opt in ("true", "false"):
        torch.manual_seed(0)
        m = LazyDango.from_spec(model_spec_from_yaml(text.replace("OPT", opt)), random_graph(12), 1,
                                node_features=feats, feature_names=FEATURE_NAMES).eval()
        with torch.no_grad():
            m.additive_term.scale.fill_(0.8)
        m.set_training_genes(torch.arange(5))
        models[opt] = m
    models["false"].load_state_dict(models["true"].state_dict())
    assert torch.equal(models["false"].embedding.seen, torch.arange(12) < 5)  # travels in the state dict
    batch = make_batch([torch.tensor([6, 7]), torch.tensor([0, 7]), torch.tensor([8, 9, 10])])
    pred, reps = models["false"](batch)
    full, full_reps = models["true"](batch)
    unseen = torch.tensor([True, False, True])
    torch.testing.assert_close(pred[unseen], reps["additive"][unseen])  # every gene unseen: the term alone
    torch.testing.assert_close(pred[~unseen], full[~unseen])  # a seen gene: the interaction part as usual
    assert not torch.allclose(full[unseen], full_reps["additive"][unseen])
    ref, _ = models["false"].reference_forward(batch)
    torch.testing.assert_close(pred, ref, atol=1e-5, rtol=1e-5)


def test_pair_values_partner_memory_recalls_other_samples_only_and_survives_the_checkpoint():
    text = ("hidden_dim: 8\nnum_layers: 1\nlocal_predictor: {type: hypergraph_attention, num_heads: 2}\n"
            "additive_term: {type: pair_values, gene_values: ['pheno.single'], hidden_dim: 8, partner_memory: 0.7}")
    feats = torch.randn(12, 3)

    def build():
        torch.manual_seed(0)
        return LazyDango.from_spec(model_spec_from_yaml(text), random_graph(12), 1, node_features=feats,
                                   feature_names=FEATURE_NAMES).eval()

    model = build()
    term = model.additive_term
    v = model.additive_values[:, 0]
    train = [torch.tensor([0, 1]), torch.tensor([0, 2]), torch.tensor([0, 3]), torch.tensor([4, 5])]
    y = torch.tensor([[0.5], [-1.0], [2.0], [3.0]])
    batch = make_batch(train)
    term.set_memory(batch.pert_padded, batch.pert_mask.bool(), y, model.additive_values)

    def recall(genes):
        g = torch.tensor([genes])
        return term._recall(g, torch.ones_like(g, dtype=torch.bool), model.additive_values[g])[0]  # [2, T + 1]

    def kernel(a, b):
        return torch.exp(-0.5 * (v[a] - v[b]) ** 2 / 0.7 ** 2)

    # gene 0 (seen) with unseen gene 7: gene 0's three samples, weighted by how close 1, 2, 3 are to 7
    w = torch.stack([kernel(1, 7), kernel(2, 7), kernel(3, 7)])
    got = recall([0, 7])
    torch.testing.assert_close(got[0, 0], (w * y[:3, 0]).sum() / w.sum())
    torch.testing.assert_close(got[0, 1], torch.log1p(w.sum()))
    torch.testing.assert_close(got[1], torch.zeros(2))  # gene 7: nothing remembered
    # a training pair never reads its own score: (0, 1) reads gene 0's (0, 2) and (0, 3), weighted by how
    # close 2 and 3 are to 1, and nothing of gene 1's (its one sample is this one)
    w = torch.stack([kernel(2, 1), kernel(3, 1)])
    got = recall([0, 1])
    torch.testing.assert_close(got[0, 0], (w * y[1:3, 0]).sum() / w.sum())
    torch.testing.assert_close(got[1], torch.zeros(2))
    # two genes without training samples: nothing remembered
    torch.testing.assert_close(recall([8, 9]), torch.zeros(2, 2))
    # in training a gene's recall is dropped at the memory_dropout rate; in evaluation never
    term.train()
    term.memory_dropout = 0.5
    torch.manual_seed(1)
    drops = [bool((recall([0, 7])[0] == 0).all()) for _ in range(200)]
    assert 60 < sum(drops) < 140
    term.eval()
    # the memory travels in the state dict into a fresh model
    pred, _ = model(make_batch([torch.tensor([0, 7]), torch.tensor([8, 9])]))
    fresh = build()
    fresh.load_state_dict(model.state_dict())
    assert fresh.additive_term.mem_y.shape == (8, 1)  # one entry per (gene, sample)
    for name in ("mem_ptr", "mem_values", "mem_y", "mem_key"):
        assert torch.equal(getattr(fresh.additive_term, name), getattr(term, name)), name
    again, _ = fresh(make_batch([torch.tensor([0, 7]), torch.tensor([8, 9])]))
    torch.testing.assert_close(pred, again)


def test_pair_values_memory_values_choose_the_columns_partners_are_compared_on():
    base = ("hidden_dim: 8\nnum_layers: 1\nlocal_predictor: {type: hypergraph_attention, num_heads: 2}\n"
            "additive_term: {type: pair_values, gene_values: ['pheno.*'], partner_memory: 0.5")

    def build(extra):
        return LazyDango.from_spec(model_spec_from_yaml(base + extra + "}"), random_graph(12), 1,
                                   node_features=torch.randn(12, 3), feature_names=FEATURE_NAMES)

    assert build("").additive_term.memory_columns == [0, 1]
    term = build(", memory_values: [pheno.missing]").additive_term
    assert term.memory_columns == [1] and term.mem_values.shape == (0, 1)
    with pytest.raises(ValueError, match=r"additive_term.memory_values: 'other.x' matches none of the gene_values "
                                         r"columns \(pheno.single, pheno.missing\)"):
        build(", memory_values: [other.x]")
