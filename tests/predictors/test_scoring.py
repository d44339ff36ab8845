"""The fast scorer (wildtype once, table pair relations, big batches) against the per-batch model forward,
and the shared batch iterator."""

from __future__ import annotations

import pytest
import torch

from cellgi.cli.main import main
from cellgi.data.batch import collate_index_sets, iter_batches, pad_sets
from cellgi.predictors import load_predictor
from cellgi.predictors.ensemble import LoadedEnsemble
from cellgi.predictors.scoring import (
    MESSAGE_PASSING_BATCH_SIZE,
    WILDTYPE_BATCH_SIZE,
    ModelScorer,
    gene_labels,
    network_batch_size,
)
from cellgi.predictors.stack import LoadedStack

from cellgi.testing import model_spec_from_yaml, random_graph
from tiny_specs import write_tiny_spec

#: a wildtype-only model with the pair-relation head (the yeast configs' kind), a seed pair, and a stack
LOCAL_ONLY = ["model.local_predictor={type: pair_relations, num_layers: 2}", "model.combiner={type: local_only}"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("scoring")
    spec = write_tiny_spec(base, epochs=1)
    single = base / "single"
    assert main(["train", str(spec), *LOCAL_ONLY, "--run-dir", str(single), "--no-progress"]) == 0
    stacked = base / "stacked"
    assert main(["train", str(spec), *LOCAL_ONLY, "training.stack={baselines: [features]}", "--seeds", "0,1",
                 "--run-dir", str(stacked), "--no-progress"]) == 0
    return {"single": single, "stacked": stacked, "global": None}


def _old_predict(loaded, sets, batch_size=64):
    """What `cellgi predict` computed before the scorer: `loaded.predict` batch by batch (the model's
    forward recomputing the wildtype cell each batch; a stack's baselines per batch)."""
    t = len(loaded.target_names)
    preds, locs = [], []
    for lo in range(0, len(sets), batch_size):
        chunk = [torch.as_tensor(s) for s in sets[lo : lo + batch_size]]
        pred, reps = loaded.predict(collate_index_sets(chunk, torch.full((len(chunk), t), float("nan"))))
        preds.append(pred.float())
        locs.append(reps["local_interaction"].float())
    return torch.cat(preds), torch.cat(locs)


def _sets(n_genes: int, n: int = 700) -> list[list[int]]:
    g = torch.Generator().manual_seed(1)
    sets = []
    while len(sets) < n:
        k = 2 if len(sets) % 5 else 3
        s = torch.randperm(n_genes, generator=g)[:k].tolist()
        sets.append(s)
    return sets + [[3]]  # a single gene too (padding and masks)


@pytest.mark.parametrize("which", ["single", "stacked"])
def test_fast_scorer_equals_the_per_batch_forward(runs, which):
    """Tolerance: 1e-5 absolute + 1e-5 relative (float32 GEMMs over other batch shapes); measured: 0 on the
    real E-MAP run at 6 significant digits (docs/performance.md)."""
    loaded = load_predictor(runs[which])
    assert isinstance(loaded, LoadedStack) == (which == "stacked")
    if which == "stacked":
        assert isinstance(loaded.network, LoadedEnsemble) and len(loaded.network.members) == 2
    sets = _sets(len(loaded.mapper.genes))
    old_pred, old_local = _old_predict(loaded, sets)
    scorer = loaded.scorer(128)  # several batches, other shapes than the old path's
    padded, mask = pad_sets(sets)
    outs = [scorer.score_padded(p, m) for p, m in zip(iter_batches(padded, 128), iter_batches(mask, 128))]
    pred = torch.cat([o["pred"] for o in outs])
    torch.testing.assert_close(pred, old_pred, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.cat([o["local"] for o in outs]), old_local, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(loaded.scorer().score(sets), old_pred, atol=1e-5, rtol=1e-5)
    if which == "stacked":
        assert set(outs[0]["members"]) == {"network", "baseline_features"}


def test_default_batch_sizes_follow_the_model(runs):
    assert load_predictor(runs["single"]).default_batch_size() == WILDTYPE_BATCH_SIZE
    assert load_predictor(runs["stacked"]).default_batch_size() == WILDTYPE_BATCH_SIZE
    assert load_predictor(runs["single"]).scorer().batch_size == WILDTYPE_BATCH_SIZE


def test_message_passing_model_scorer_equals_forward():
    """A model with a global part: perturbed columns per batch, the stored wildtype column appended."""
    from cellgi.nn.model import LazyDango

    graph = random_graph(30)
    spec = model_spec_from_yaml("hidden_dim: 8\nnum_layers: 2\nlocal_predictor: {type: hypergraph_attention, num_heads: 2}")
    torch.manual_seed(0)
    model = LazyDango.from_spec(spec, graph, 2).eval()
    assert not model.reads_wildtype_only and network_batch_size(model) == MESSAGE_PASSING_BATCH_SIZE
    sets = [[1, 2, a] for a in range(3, 20)] + [[4, 7], [9]]
    with torch.no_grad():
        want = model(collate_index_sets([torch.tensor(s) for s in sets], torch.zeros(len(sets), 2)))[0]
    torch.testing.assert_close(ModelScorer(model, batch_size=6).score(sets), want, atol=1e-5, rtol=1e-5)


def test_iter_batches_slices_sequences_and_streams_iterables():
    assert [list(b) for b in iter_batches(list(range(7)), 3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [b.tolist() for b in iter_batches(torch.arange(5), 2)] == [[0, 1], [2, 3], [4]]
    assert list(iter_batches((i for i in range(5)), 2)) == [[0, 1], [2, 3], [4]]
    assert list(iter_batches([], 4)) == []
    with pytest.raises(ValueError, match="at least 1"):
        list(iter_batches([1], 0))


def test_pad_sets_masks_short_sets():
    padded, mask = pad_sets([[4, 5], [6], [7, 8, 9]])
    assert padded.tolist() == [[4, 5, 0], [6, 0, 0], [7, 8, 9]]
    assert mask.tolist() == [[True, True, False], [True, False, False], [True, True, True]]


def test_gene_labels_are_standard_names_or_the_gene():
    from cellgi.data.genes import GeneMapper

    m = GeneMapper(["YML032C", "YAL015C", "YFOO"], names={"RAD52": "YML032C", "NTG1": "YAL015C"})
    assert gene_labels(m) == ["RAD52", "NTG1", "YFOO"]
