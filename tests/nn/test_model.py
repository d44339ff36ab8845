"""LazyDango assembly: shared == reference path, sample independence, errors, checkpoints, overfitting."""

from __future__ import annotations

import pytest
import torch

from cellgi.data.batch import PerturbationBatch, collate_index_sets
from cellgi.nn.heads import HeadInput
from cellgi.nn.model import REPRESENTATION_KEYS, LazyDango, NonFiniteError
from nn_helpers import make_batch, model_spec_from_yaml, random_graph, random_sets

SMALL = """
hidden_dim: 16
num_layers: 2
conv: {type: CONV}
aggregator: {type: AGG}
local_predictor: {type: hypergraph_attention, num_heads: 2}
"""


def small_spec(conv: str = "masked_gin", agg: str = "sum", extra: str = ""):
    return model_spec_from_yaml(SMALL.replace("CONV", conv).replace("AGG", agg) + extra)


@pytest.mark.realdata
@pytest.mark.parametrize("conv", ["masked_gin", "masked_gatv2"])
@pytest.mark.parametrize("agg", ["sum", "pairwise_interaction"])
@pytest.mark.parametrize("idx", [[3], [0, 20, 5, 31]], ids=["B1", "B4"])
def test_shared_forward_equals_reference_forward(yeast_subset, conv, agg, idx):
    model = LazyDango.from_spec(small_spec(conv, agg), yeast_subset.graph, 1).eval()
    batch = make_batch([yeast_subset.sets[i] for i in idx])
    with torch.no_grad():
        pred, reps = model(batch)
        ref, ref_reps = model.reference_forward(batch)
    torch.testing.assert_close(pred, ref, atol=1e-5, rtol=1e-5)
    for key in ("z_w", "z_i", "z_p", "pert_gene_embs"):
        torch.testing.assert_close(reps[key], ref_reps[key], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("conv", ["masked_gin", "masked_gatv2"])
@pytest.mark.parametrize("agg", ["sum", "pairwise_interaction"])
def test_bf16_autocast_forward_backward_on_cpu(conv, agg):
    graph = random_graph(40)
    torch.manual_seed(0)
    model = LazyDango.from_spec(small_spec(conv, agg), graph, 1)
    batch = make_batch(random_sets(40, [3, 2, 3]))
    ref, _ = model(batch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        pred, _ = model(batch)
    assert pred.dtype in (torch.bfloat16, torch.float32)
    torch.testing.assert_close(pred.float(), ref, atol=0.1, rtol=0.1)
    pred.float().sum().backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad and p.numel()}
    assert grads["embedding.weight"] is not None
    assert all(torch.isfinite(g).all() for g in grads.values() if g is not None)


def test_reps_keys_and_shapes():
    graph = random_graph(40)
    model = LazyDango.from_spec(small_spec(agg="cross_attention"), graph, 3)
    batch = make_batch(random_sets(40, [2, 3, 3, 2, 2]), num_targets=3)
    pred, reps = model(batch)
    assert set(reps) == set(REPRESENTATION_KEYS)
    assert pred.shape == (5, 3)
    assert reps["z_w"].shape == (1, 16) and reps["z_i"].shape == (5, 16) and reps["z_p"].shape == (5, 16)
    torch.testing.assert_close(reps["z_p"], reps["z_w"] - reps["z_i"])
    assert reps["local_interaction"].shape == (5, 3) and reps["global_interaction"].shape == (5, 3)
    assert reps["gate_weights"].shape == (5, 2)
    torch.testing.assert_close(reps["gate_weights"].sum(-1), torch.ones(5))
    assert reps["pert_gene_embs"].shape == (5, 3, 16)
    law = reps["layer_aggregation_weights"]
    assert law.shape == (2, 3) and not law.requires_grad
    torch.testing.assert_close(law.sum(-1), torch.ones(2))
    assert model.aggregation_labels == ["und_a", "und_b", "dir"]


def test_prediction_independent_of_batch_mates():
    graph = random_graph(40)
    model = LazyDango.from_spec(small_spec("masked_gatv2", "pairwise_interaction"), graph, 1).eval()
    sets = random_sets(40, [3, 2, 3, 2, 3], seed=7)
    with torch.no_grad():
        alone, _ = model(make_batch(sets[:1]))
        with_a, _ = model(make_batch(sets[:3]))
        with_b, _ = model(make_batch([sets[0], sets[4], sets[3]]))
    torch.testing.assert_close(with_a[0], alone[0], atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(with_b[0], alone[0], atol=1e-6, rtol=1e-6)
    assert not torch.allclose(with_a[1], with_a[0])  # samples do differ


def test_global_path_independent_of_deleted_gene_embeddings():
    """z_i (and every kept gene's state) of a sample ignore the embeddings of its deleted genes; only the
    wildtype pass and the local head read them, by design."""
    graph = random_graph(40)
    model = LazyDango.from_spec(small_spec(), graph, 1).eval()
    sets = random_sets(40, [3, 2], seed=8)
    batch = make_batch(sets)
    keep = model.keep_mask(batch)
    with torch.no_grad():
        states, _ = model.gene_states(keep)
        _, reps = model(batch)
        model.embedding.weight[sets[0]] += torch.randn(3, 16)
        states2, _ = model.gene_states(keep)
        _, reps2 = model(batch)
    torch.testing.assert_close(states2[:, 0][keep[:, 0]], states[:, 0][keep[:, 0]])
    torch.testing.assert_close(reps2["z_i"][0], reps["z_i"][0])
    assert not torch.allclose(reps2["z_i"][1], reps["z_i"][1])  # sample 1 keeps those genes
    assert not torch.allclose(reps2["z_w"], reps["z_w"])  # the wildtype reads them by design


def test_missing_local_head_field_is_an_error():
    graph = random_graph(30)
    model = LazyDango.from_spec(small_spec(), graph, 1)
    batch = make_batch(random_sets(30, [2, 3]))
    fields = {k: getattr(batch, k) for k in batch.__dataclass_fields__}
    with pytest.raises(ValueError, match="pert_padded"):
        model(PerturbationBatch(**{**fields, "pert_padded": None}))
    with pytest.raises(ValueError, match="pert_padded"):
        model(PerturbationBatch(**{**fields, "pert_padded": torch.zeros(2, 0, dtype=torch.long),
                                   "pert_mask": torch.zeros(2, 0, dtype=torch.bool)}))
    with pytest.raises(ValueError, match="pert_mask"):
        model(PerturbationBatch(**{**fields, "pert_mask": None}))
    with pytest.raises(ValueError, match="pert_idx"):
        model(PerturbationBatch(**{**fields, "pert_idx": torch.zeros(0, dtype=torch.long),
                                   "pert_batch": torch.zeros(0, dtype=torch.long)}))


def test_non_finite_raises_naming_the_stage():
    graph = random_graph(30)
    model = LazyDango.from_spec(small_spec(), graph, 1)
    batch = make_batch(random_sets(30, [2, 3]))
    with torch.no_grad():
        model.global_predictor.out.bias.fill_(float("nan"))
    with pytest.raises(NonFiniteError, match="global_predictor") as info:
        model(batch)
    assert info.value.stages[0] == "global_predictor"
    with torch.no_grad():
        model.embedding.weight[0, 0] = float("inf")
    with pytest.raises(NonFiniteError) as info:
        model(batch)
    assert info.value.stages[0] == "embedding + preprocessor"
    off = LazyDango.from_spec(small_spec(extra="check_finite: false"), graph, 1)
    off.load_state_dict(model.state_dict())
    pred, _ = off(batch)
    assert not torch.isfinite(pred).all()


def test_edge_type_subset_and_unknown_name():
    graph = random_graph(30)
    model = LazyDango.from_spec(small_spec(extra="edge_types: [dir, und_a]"), graph, 1)
    assert model.edge_type_names == ["dir", "und_a"] and len(model.layers[0]) == 2
    assert [op.name for op in model.operators] == ["dir", "und_a"]
    with pytest.raises(ValueError, match=r"unknown edge type\(s\) \['physcial'\].*valid edge types: und_a, und_b, dir"):
        LazyDango.from_spec(small_spec(extra="edge_types: [physcial]"), graph, 1)


def test_combiner_and_local_head_must_agree():
    graph = random_graph(30)
    with pytest.raises(ValueError, match="local_predictor is null"):
        LazyDango.from_spec(small_spec(extra="combiner: {type: gate}").model_copy(
            update={"local_predictor": None}), graph, 1)
    with pytest.raises(ValueError, match="set local_predictor: null"):
        LazyDango.from_spec(small_spec(extra="combiner: {type: global_only}"), graph, 1)
    spec = model_spec_from_yaml("hidden_dim: 8\nlocal_predictor: null\ncombiner: {type: global_only}")
    model = LazyDango.from_spec(spec, graph, 1)
    pred, reps = model(make_batch(random_sets(30, [2, 2])))
    assert model.local_predictor is None and reps["local_interaction"] is None
    torch.testing.assert_close(pred, reps["global_interaction"])


def test_checkpoint_round_trip(tmp_path):
    graph = random_graph(40)
    spec = small_spec("masked_gatv2", "pairwise_interaction", "conv_wrapper: {projection: true, norm: rms}")
    torch.manual_seed(1)
    model = LazyDango.from_spec(spec, graph, 2).eval()
    batch = make_batch(random_sets(40, [3, 2, 3]), num_targets=2)
    with torch.no_grad():
        before, _ = model(batch)
    state = model.state_dict()
    assert not any(k.startswith("operators.") for k in state), "graph buffers must not bloat checkpoints"
    path = tmp_path / "model.pt"
    torch.save({"spec": spec.model_dump(mode="json"), "state_dict": state}, path)
    torch.manual_seed(2)
    loaded = torch.load(path, weights_only=True)
    rebuilt = LazyDango.from_spec(model_spec_from_yaml_dict(loaded["spec"]), graph, 2).eval()
    with torch.no_grad():
        assert not torch.equal(rebuilt(batch)[0], before)
        rebuilt.load_state_dict(loaded["state_dict"])
        after, _ = rebuilt(batch)
    assert torch.equal(after, before)


def model_spec_from_yaml_dict(d: dict):
    from cellgi.spec import validate_spec

    return validate_spec({"name": "t", "data": {"synthetic": {}}, "training": {}, "model": d}).model


def test_gene_features_feed_the_model_and_unseen_genes_share_one_vector():
    graph = random_graph(20)
    feats = torch.randn(20, 2)
    spec = small_spec(extra="embedding: {gene_dropout: 0.2}")
    model = LazyDango.from_spec(spec, graph, 1, node_features=feats)
    assert model.embedding.out_dim == 18 and "embedding.features" in model.state_dict()
    model.set_training_genes(torch.arange(10))
    model.eval()
    x = model.embedding()
    assert torch.equal(x[12, :16], x[15, :16]) and not torch.equal(x[3, :16], x[4, :16])
    pred, reps = model(make_batch(random_sets(20, [2, 3])))
    assert pred.shape == (2, 1) and reps["additive"] is None
    spec = small_spec(extra="embedding: {learnable: false}")
    model = LazyDango.from_spec(spec, graph, 1, node_features=feats)
    assert model.embedding.out_dim == 2 and model.embedding.weight is None
    with pytest.raises(ValueError, match="gene input is empty"):
        LazyDango.from_spec(spec, graph, 1)


def test_additive_term_starts_additive_and_pair_head_is_order_invariant():
    graph = random_graph(20)
    text = SMALL.replace("CONV", "masked_gin").replace("AGG", "sum").replace("hypergraph_attention", "pair_relations")
    spec = model_spec_from_yaml(text + "additive_term: {type: gene_mlp}\n")
    model = LazyDango.from_spec(spec, graph, 1, node_features=torch.randn(20, 3)).eval()
    assert model.relations is not None and model.local_predictor.num_relations == 4 * len(graph.edge_type_names)
    sets = random_sets(20, [2, 3, 3])
    pred, reps = model(make_batch(sets))
    torch.testing.assert_close(pred, reps["additive"])  # the interaction part starts at zero
    with torch.no_grad():
        model.additive_term.scale.fill_(0.7)
    pred, reps = model(make_batch(sets))
    flipped, _ = model(make_batch([s.flip(0) for s in sets]))
    torch.testing.assert_close(pred, flipped, atol=1e-5, rtol=1e-5)
    ref, _ = model.reference_forward(make_batch(sets))
    torch.testing.assert_close(pred, ref, atol=1e-5, rtol=1e-5)


def test_device_and_dtype_moves_keep_the_operators():
    graph = random_graph(30)
    model = LazyDango.from_spec(small_spec(), graph, 1).double().eval()
    assert model.operators[0].adj.dtype == torch.float64
    batch = make_batch(random_sets(30, [2, 3]))
    with torch.no_grad():
        pred, _ = model(batch)
        ref, _ = model.reference_forward(batch)
    assert pred.dtype == torch.float64
    torch.testing.assert_close(pred, ref)


@pytest.mark.realdata
def test_overfits_one_real_batch(yeast_subset):
    """32 real dev-screen samples (16 digenic epsilon, 16 trigenic tau; targets standardised): the model
    must fit them (MSE < 0.01, Pearson > 0.99) within a bounded number of AdamW steps."""
    torch.manual_seed(0)
    spec = model_spec_from_yaml(
        """
hidden_dim: 32
num_layers: 1
local_predictor: {type: hypergraph_attention, num_heads: 4}
"""
    )
    model = LazyDango.from_spec(spec, yeast_subset.graph, 1)
    y = yeast_subset.scores
    y = ((y - y.mean()) / y.std()).unsqueeze(-1)
    batch = collate_index_sets(yeast_subset.sets, y)
    assert batch.pert_mask.sum(1).unique().tolist() == [2, 3]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    loss = torch.tensor(float("inf"))
    for step in range(150):
        opt.zero_grad()
        pred, _ = model(batch)
        loss = (pred - batch.y).square().mean()
        if loss.item() < 0.005:
            break
        loss.backward()
        opt.step()
    with torch.no_grad():
        pred, _ = model(batch)
    loss = (pred - batch.y).square().mean().item()
    r = torch.corrcoef(torch.stack([pred.view(-1), batch.y.view(-1)]))[0, 1].item()
    assert loss < 0.01, f"loss {loss:.4f} after {step + 1} steps"
    assert r > 0.99, f"pearson {r:.4f}"


def test_reset_parameters_reinitialises_every_part():
    graph = random_graph(30)
    model = LazyDango.from_spec(small_spec("masked_gatv2", "pairwise_interaction"), graph, 1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(123)
    model.reset_parameters()
    after = model.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert "embedding.weight" in changed and "aggregators.0.w_in" in changed
    assert "layers.0.0.conv.att" in changed and "local_predictor.readout.weight" in changed
    pred, _ = model(make_batch(random_sets(30, [2, 3])))
    assert torch.isfinite(pred).all()


def test_pair_head_gene_values_add_min_max_product_per_column():
    graph = random_graph(20)
    text = SMALL.replace("CONV", "masked_gin").replace("AGG", "sum").replace(
        "hypergraph_attention", "pair_relations, gene_values: ['a.*']")
    feats = torch.randn(20, 3)
    model = LazyDango.from_spec(model_spec_from_yaml(text), graph, 1, node_features=feats,
                                feature_names=["a.x", "b.y", "a.z"]).eval()
    g = len(graph.edge_type_names)
    assert model.local_predictor.num_relations == 4 * g + 3 * 2
    assert model.relations.feature_names[4 * g:] == ["min.a.x", "max.a.x", "product.a.x",
                                                     "min.a.z", "max.a.z", "product.a.z"]
    padded, mask = torch.tensor([[3, 7, 0]]), torch.tensor([[True, True, False]])
    rel = model.relations(padded, mask)[0, 0, 1, 4 * g:]
    a, b = feats[3, [0, 2]], feats[7, [0, 2]]
    expect = torch.stack([torch.minimum(a, b), torch.maximum(a, b), a * b], 1).reshape(-1)
    torch.testing.assert_close(rel, expect)
    assert torch.equal(model.relations(padded, mask)[0, 0, 2], torch.zeros(4 * g + 6))  # padding is zero
    sets = random_sets(20, [2, 3, 3])
    pred, _ = model(make_batch(sets))
    flipped, _ = model(make_batch([s.flip(0) for s in sets]))
    torch.testing.assert_close(pred, flipped, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match=r"local_predictor.gene_values: 'c\.\*' matches no feature column"):
        LazyDango.from_spec(model_spec_from_yaml(text.replace("'a.*'", "'c.*'")), graph, 1, node_features=feats,
                            feature_names=["a.x", "b.y", "a.z"])


@pytest.mark.parametrize("fused", [False, True])
def test_deepcopy_gives_an_independent_equal_model(fused):
    """copy.deepcopy (weight averaging, model selection code) works although the graph is sparse CSR."""
    import copy

    model = LazyDango.from_spec(small_spec(), random_graph(20), 1).eval()
    model.fused_edge_types = fused
    batch = make_batch(random_sets(20, [2, 3]))
    before, _ = model(batch)
    twin = copy.deepcopy(model)
    assert twin.operators[0].adj.layout == torch.sparse_csr
    torch.testing.assert_close(twin(batch)[0], before)
    with torch.no_grad():
        for p in twin.parameters():
            p.add_(0.5)
    torch.testing.assert_close(model(batch)[0], before)  # the original is untouched
    assert not torch.allclose(twin(batch)[0], before)


@pytest.mark.parametrize("reads", [["relations"], ["states", "relations"], ["inputs"], ["states"]])
def test_pair_head_reads_only_what_it_is_told(reads):
    graph = random_graph(20)
    text = SMALL.replace("CONV", "masked_gin").replace("AGG", "sum").replace(
        "hypergraph_attention", f"pair_relations, attention: false, reads: {reads}")
    spec = model_spec_from_yaml(text)
    torch.manual_seed(0)
    model = LazyDango.from_spec(spec, graph, 1, node_features=torch.randn(20, 3)).eval()
    head = model.local_predictor
    r = head.num_relations
    assert head.pair_mlp.layers[0].in_features == 3 * 16 * ("states" in reads) + 3 * 16 * ("inputs" in reads) \
        + r * ("relations" in reads)
    sets = random_sets(20, [2, 3])
    emb, mask = torch.randn(2, 3, 16), torch.tensor([[True, True, False], [True, True, True]])
    rel, inputs = torch.randn(2, 3, 3, r), torch.randn(2, 3, 16)
    base, _ = head(HeadInput(states=emb, mask=mask, relations=rel, inputs=inputs))
    # what the head does not read does not change its prediction; what it reads does
    for name, kw in (("states", {"emb": emb + 1}), ("inputs", {"inputs": inputs + 1}),
                     ("relations", {"relations": rel + 1})):
        args = {"emb": emb, "mask": mask, "relations": rel, "inputs": inputs} | kw
        out, _ = head(HeadInput(states=args["emb"], mask=args["mask"], relations=args["relations"],
                                inputs=args["inputs"]))
        assert torch.equal(out, base) is (name not in reads), name
    pred, _ = model(make_batch(sets))
    ref, _ = model.reference_forward(make_batch(sets))
    torch.testing.assert_close(pred, ref, atol=1e-5, rtol=1e-5)


def test_pair_head_gene_values_need_relations():
    from cellgi.nn.heads import PairRelationParams

    with pytest.raises(ValueError, match="add 'relations' to reads"):
        PairRelationParams(gene_values=["a.*"], reads=["states"])
