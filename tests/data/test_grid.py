"""Genome-wide SGA grids: the sga_grid reader, the compact GridDataset, splits, the epoch sampler, caching."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from cellgi.data.build import build_data
from cellgi.data.errors import DataError
from cellgi.data.genes import GeneMapper
from cellgi.data.grid import GridDataset, grid_fit_rows, map_grid
from cellgi.data.grid_sampler import GridEpochSampler
from cellgi.data.readers.sga_grid import allele_tag, read_sga_grid, strain_gene
from cellgi.data.splits import make_splits
from cellgi.spec import load_spec

GENES = ["YA", "YB", "YC", "YD", "YE", "YF"]
# query A (3 alleles), B, C, X (not in the gene list); arrays B, C (also queries), D, E
ROWS = [
    ("YA_tsq1", "YB_dma1", -0.5),
    ("YA_tsq2", "YB_dma1", -0.3),   # second allele of A: merged with the row above
    ("YA_tsq1", "YD_dma3", 0.2),
    ("YB_sn1", "YC_dma2", -0.2),
    ("YC_sn2", "YB_dma1", -0.4),    # reciprocal of the row above
    ("YB_sn1", "YB_dma1", -0.9),    # self pair: dropped
    ("YX_sn3", "YD_dma3", -0.6),    # unmapped strain
    ("YC_sn2", "YE_damp1", -0.25),
    ("YA_sn5", "YE_damp1", -0.7),   # third allele of A
]


def _write_listing(path: Path, rows=ROWS) -> Path:
    lines = [f"{q}\t{q.split('_')[0].lower()}\t{a}\t{a.split('_')[0].lower()}\t{v}\t0.05\t0.001" for q, a, v in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def _values(load) -> dict[frozenset, float]:
    ds = load.dataset
    pairs = ds.pairs(torch.arange(len(ds)))
    y = ds.targets(torch.arange(len(ds)))[:, 0]
    return {frozenset((GENES[int(a)], GENES[int(b)])): float(v) for (a, b), v in zip(pairs.tolist(), y)}


def test_strain_names():
    assert strain_gene("YAL001C_tsq508") == "YAL001C" and allele_tag("YAL001C_tsq508") == "tsq"
    assert strain_gene("YBR002C_damp4") == "YBR002C" and allele_tag("YBR002C_damp4") == "damp"
    assert strain_gene("YAL002W") == "YAL002W" and allele_tag("YAL002W") == ""


def test_listing_grid_counts_and_values(tmp_path):
    raw = read_sga_grid(_write_listing(tmp_path / "s.txt"))
    assert raw.layout == "listing" and raw.num_rows == 9
    load = map_grid(raw, GeneMapper(GENES), ["gene_interaction"])
    c = load.counts
    # grid: queries {A, B, C} x arrays {B, C, D, E}: 12 cells - 2 self - 1 reciprocal duplicate
    assert (c["query_genes"], c["array_genes"], c["genes_both_sides"]) == (3, 4, 2)
    assert (c["grid_cells"], c["grid_pairs"], c["self_pairs_dropped"], c["reciprocal_grid_pairs"]) == (12, 9, 2, 1)
    assert len(load.dataset) == 9
    assert (c["rows"], c["unmapped_rows"], c["unmapped_strains"], c["self_rows_dropped"]) == (9, 1, 1, 1)
    assert (c["rows_used"], c["listed_pairs"], c["rows_merged"], c["reciprocal_pairs"]) == (7, 5, 2, 1)
    assert (c["alleles_merged"], c["genes_with_several_alleles"]) == (2, 1)
    assert load.unmapped.examples() == ["YX"]
    v = _values(load)
    assert len(v) == 9 and frozenset(("YB", "YB")) not in v
    assert v[frozenset(("YA", "YB"))] == pytest.approx(-0.4)      # alleles averaged
    assert v[frozenset(("YB", "YC"))] == pytest.approx(-0.3)      # both orientations averaged
    assert v[frozenset(("YA", "YE"))] == pytest.approx(-0.7)
    assert v[frozenset(("YA", "YC"))] == 0.0 and v[frozenset(("YB", "YE"))] == 0.0   # unlisted: neutral
    assert int(load.dataset.listed(torch.arange(9)).sum()) == 5


def test_neutral_value_and_priority_rule(tmp_path):
    raw = read_sga_grid(_write_listing(tmp_path / "s.txt"))
    sn_first = _values(map_grid(raw, GeneMapper(GENES), ["gene_interaction"], neutral=0.01, alleles=["sn", "tsq"]))
    assert sn_first[frozenset(("YA", "YE"))] == pytest.approx(-0.7)
    assert sn_first[frozenset(("YA", "YB"))] == pytest.approx(0.01)  # A's tsq rows dropped: neutral
    load = map_grid(raw, GeneMapper(GENES), ["gene_interaction"], alleles=["tsq", "sn"])
    tsq_first = _values(load)
    assert tsq_first[frozenset(("YA", "YB"))] == pytest.approx(-0.5)  # tie between tsq1 and tsq2: smallest id
    assert tsq_first[frozenset(("YA", "YE"))] == 0.0
    assert load.counts["allele_rows_dropped"] == 2


def test_grid_from_gene_lists(tmp_path):
    (tmp_path / "q.txt").write_text("YA_tsq1\nYB\nYF\n")
    (tmp_path / "a.txt").write_text("YB\nYD\n")
    raw = read_sga_grid(_write_listing(tmp_path / "s.txt"), query_genes=tmp_path / "q.txt",
                        array_genes=tmp_path / "a.txt")
    load = map_grid(raw, GeneMapper(GENES), ["gene_interaction"])
    c = load.counts
    assert (c["query_genes"], c["array_genes"], c["grid_pairs"]) == (3, 2, 5)  # B-B dropped
    assert c["rows_outside_grid"] == 4  # B-C, C-B, C-E, A-E (X-D is unmapped, counted there)
    assert _values(load)[frozenset(("YA", "YD"))] == pytest.approx(0.2)


def test_full_matrix_2016_layout(tmp_path):
    header = ("Query Strain ID\tQuery allele name\tArray Strain ID\tArray allele name\tArraytype/Temp\t"
              "Genetic interaction score (ε)\tP-value\tQuery single mutant fitness (SMF)\n")
    rng = np.random.default_rng(0)
    lines, expect = [header], {}
    for q in ("YA_tsq12", "YB_sn4", "YC_sn7"):
        for a in ("YB_dma1", "YD_dma2", "YE_dma3", "YF_tsa9"):
            if q[:2] == a[:2]:
                continue
            v = round(float(rng.normal(0, 0.1)), 4)
            lines.append(f"{q}\tx\t{a}\tx\tDMA30\t{v}\t0.5\t0.9\n")
            expect[frozenset((q[:2], a[:2]))] = v
    lines.append("YC_sn7\tx\tYB_dma1\tx\tDMA30\tNA\t\t0.9\n")  # unscored: counted
    p = tmp_path / "SGA_NxN.txt"
    p.write_text("".join(lines))
    raw = read_sga_grid(p)
    assert raw.layout == "header" and raw.filtered["no measured target"] == 1
    load = map_grid(raw, GeneMapper(GENES), ["gene_interaction"])
    assert load.counts["listed_pairs"] == load.counts["grid_pairs"] == len(expect) == 11
    got = _values(load)
    assert all(got[k] == pytest.approx(v, abs=1e-6) for k, v in expect.items())


def test_reader_errors(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("YA_tsq1\ta\tYB_dma1\tb\t-0.3\t0.1\t0.01\nYA_tsq1\ta\tYC_dma1\tb\tstrong\t0.1\t0.01\n")
    with pytest.raises(DataError, match=r"bad.txt:2: .*not a finite number"):
        read_sga_grid(bad)
    bad.write_text("Query Strain ID\tArray Strain ID\tscore\nYA_1\tYB_2\t0.1\n")
    with pytest.raises(DataError, match="no interaction score column"):
        read_sga_grid(bad)
    bad.write_text("YA+YB_tm1\ta\tYC_dma1\tb\t-0.3\t0.1\t0.01\n")
    with pytest.raises(DataError, match="does not name one gene"):
        read_sga_grid(bad)
    raw = read_sga_grid(_write_listing(tmp_path / "s.txt"))
    with pytest.raises(DataError, match="provides only the target"):
        map_grid(raw, GeneMapper(GENES), ["fitness"])


def random_grid(q: int, a: int, shared: int, listed: float, num_genes: int, seed: int = 0) -> GridDataset:
    """A random grid over ``num_genes`` genes: ``shared`` genes on both sides, ``listed`` share of pairs listed."""
    rng = np.random.default_rng(seed)
    genes = rng.permutation(num_genes)
    both, qo, ao = genes[:shared], genes[shared:q], genes[q : q + a - shared]
    ds = GridDataset(torch.from_numpy(np.concatenate([both, qo])), torch.from_numpy(np.concatenate([both, ao])),
                     shared, torch.zeros(0, dtype=torch.long), torch.zeros(0, 1), torch.zeros(1),
                     ["gene_interaction"], num_genes)
    keys = np.sort(rng.choice(len(ds), int(listed * len(ds)), replace=False))
    return GridDataset(ds.query_genes, ds.array_genes, shared, torch.from_numpy(keys),
                       torch.from_numpy(rng.normal(-0.2, 0.1, (keys.size, 1))), torch.zeros(1),
                       ["gene_interaction"], num_genes)


def test_index_arithmetic_matches_the_enumerated_pairs():
    ds = random_grid(7, 9, 4, 0.2, 20)
    q, a = ds.query_genes.tolist(), ds.array_genes.tolist()
    seen, want = set(), []
    for gq in q:  # every unordered pair of distinct genes, first orientation met
        for ga in a:
            key = frozenset((gq, ga))
            if gq != ga and key not in seen:
                seen.add(key)
                want.append(key)
    got = [frozenset(p) for p in ds.pairs(torch.arange(len(ds))).tolist()]
    assert len(ds) == len(want) == 7 * 9 - 4 - 6 and set(got) == set(want) and len(set(got)) == len(got)
    qq, aa = ds.cells(torch.arange(len(ds)))
    assert torch.equal(ds.pair_index(qq, aa), torch.arange(len(ds)))
    dense = ds.y
    assert torch.equal(ds.targets(torch.arange(len(ds))), dense) and int(ds.listed(torch.arange(len(ds))).sum()) == ds.num_listed
    sub = ds.subset(torch.tensor([3, 0, 5]))
    assert torch.equal(sub.padded(), ds.pairs(torch.tensor([3, 0, 5]))) and torch.equal(sub.y, dense[[3, 0, 5]])
    b = ds.batch(torch.tensor([1, 2]))
    assert b.pert_padded.tolist() == ds.pairs(torch.tensor([1, 2])).tolist() and torch.equal(b.y, dense[[1, 2]])
    back = GridDataset.from_state_dict(ds.state_dict())
    assert torch.equal(back.y, dense) and len(back) == len(ds)


def test_gene_mask_subsets():
    ds = random_grid(6, 8, 3, 0.1, 16, seed=1)
    mask = torch.zeros(16, dtype=torch.bool)
    mask[ds.query_genes[:2]] = True
    both = ds.where_genes(mask, mask, "or")
    pairs = ds.pairs(torch.arange(len(ds)))
    want = torch.nonzero(mask[pairs].any(1)).reshape(-1)
    assert torch.equal(both, want)


@pytest.mark.parametrize("fold", [0, 3])
def test_gene_folds_on_a_grid_match_the_flat_split(fold):
    ds = random_grid(30, 45, 12, 0.05, 80, seed=2)
    grid = make_splits(ds, "gene_folds", seed=4, num_folds=5, fold=fold, val_fraction=0.2)
    flat = make_splits(ds.subset(torch.arange(len(ds))), "gene_folds", seed=4, num_folds=5, fold=fold,
                       val_fraction=0.2)
    assert grid.splits.keys() == flat.splits.keys() and grid.dropped == flat.dropped
    assert all(torch.equal(grid.splits[k], flat.splits[k]) for k in grid.splits)
    pairs = ds.pairs(torch.arange(len(ds)))
    test_g, val_g = torch.tensor(grid.test_genes), torch.tensor(grid.val_genes)
    n_test = torch.isin(pairs, test_g).sum(1)
    n_val = torch.isin(pairs, val_g).sum(1)
    s = grid.splits
    assert int(n_test[s["train"]].sum()) == 0 and int(n_val[s["train"]].sum()) == 0
    assert int(n_test[s["val"]].sum()) == 0 and bool((n_val[s["val"]] > 0).all())  # gene-disjoint validation
    assert bool((n_test[s["test_one_unseen"]] == 1).all()) and bool((n_test[s["test_two_unseen"]] == 2).all())
    assert s["test_one_unseen"].numel() + s["test_two_unseen"].numel() == s["test"].numel()
    assert sum(s[k].numel() for k in ("train", "val", "test")) + grid.dropped == len(ds)


def test_grid_refuses_split_kinds_it_cannot_honour():
    with pytest.raises(DataError, match="not available for a grid"):
        make_splits(random_grid(5, 6, 2, 0.2, 12), "strict_gene_holdout")


def test_epoch_sampler_is_unbiased_and_keeps_every_listed_pair():
    ds = random_grid(20, 30, 8, 0.1, 50, seed=3)
    train = torch.arange(0, len(ds), 2)  # any subset
    f = torch.from_numpy(np.random.default_rng(0).gamma(2.0, 1.0, len(ds)))  # a per-pair quantity
    full_mean = float(f[train].mean())
    s = GridEpochSampler(ds, train, 16, share=0.1, seed=5)
    listed = train[ds.listed(train)]
    n_neutral = train.numel() - listed.numel()
    batch_means, epoch_means = [], []
    for epoch in range(300):
        s.set_epoch(epoch)
        batches = list(s)
        idx = torch.cat([b.indices for b in batches])
        w = torch.cat([b.weights for b in batches])
        assert torch.equal(torch.sort(idx[ds.listed(idx)]).values, listed)  # every listed pair, once
        assert int((~ds.listed(idx)).sum()) == round(0.1 * n_neutral)
        assert float(w.sum()) == pytest.approx(train.numel())
        assert float(w[~ds.listed(idx)].mean()) == pytest.approx(1 / 0.1, rel=0.2)
        sums = [float(b.weights.sum()) for b in batches]
        assert max(sums) == pytest.approx(min(sums))  # the same weight in every batch
        batch_means += [float((b.weights * f[b.indices]).sum() / b.weights.sum()) for b in batches]
        epoch_means.append(float((w * f[idx]).sum()) / train.numel())
    se = float(np.std(epoch_means)) / math.sqrt(len(epoch_means))
    assert abs(np.mean(epoch_means) - full_mean) < 4 * se + 1e-9
    assert np.mean(batch_means) == pytest.approx(np.mean(epoch_means), rel=1e-6)  # float32 weights
    assert len(s) == len(batches)


def test_epoch_sampler_shards_ranks_evenly():
    ds = random_grid(10, 12, 4, 0.2, 30, seed=6)
    train = torch.arange(len(ds))
    shards = [list(GridEpochSampler(ds, train, 8, share=0.3, seed=1, rank=r, world_size=3)) for r in range(3)]
    assert len({len(x) for x in shards}) == 1
    idx = torch.cat([b.indices for sh in shards for b in sh])
    assert idx.unique().numel() == idx.numel()


def test_fit_rows_weights_estimate_the_training_grid():
    ds = random_grid(20, 30, 8, 0.1, 50, seed=3)
    train = torch.arange(len(ds))
    idx, w = grid_fit_rows(ds, train, 0.2, seed=0)
    assert torch.equal(idx, torch.sort(idx).values)
    assert float(w.sum()) == pytest.approx(len(ds)) and bool(ds.listed(idx).sum() == ds.num_listed)


# ------------------------------------------------------------------------------------------- build / cache
def _grid_spec(tmp_path: Path, **extra) -> Path:
    rng = np.random.default_rng(0)
    genes = [f"Y{i:03d}" for i in range(60)]
    (tmp_path / "genes.txt").write_text("\n".join(genes) + "\n")
    (tmp_path / "edges.txt").write_text("\n".join(f"{genes[i]} {genes[(i * 7 + 3) % 60]}" for i in range(60)) + "\n")
    rows = []
    for qi in range(25):
        for ai in range(15, 60):
            if qi != ai and (rng.random() < 0.08 or qi == ai % 15 or ai == 15 + qi):  # every gene once at least
                rows.append((f"{genes[qi]}_tsq{qi}", f"{genes[ai]}_dma{ai}", round(float(rng.normal(-0.2, 0.1)), 4)))
    _write_listing(tmp_path / "sga.txt", rows)
    sampling = extra.pop("sampling", "{share: 0.2}")
    spec = f"""\
name: tiny_grid
seed: 0
data:
  root: {tmp_path}
  genes: {{source: list, path: genes.txt}}
  graphs: [{{name: physical, format: edgelist, path: edges.txt}}]
  screens: [{{format: sga_grid, path: sga.txt}}]
  neutral_sampling: {sampling}
  split: {{kind: gene_folds, num_folds: 4, fold: 0, val_fraction: 0.2, seed: 0}}
  batch_size: 64
  eval_batch_size: 256
  cache_dir: {tmp_path / 'cache'}
model:
  hidden_dim: 8
  num_layers: 1
  local_predictor: {{type: pair_relations, num_layers: 1, attention: false}}
  combiner: {{type: local_only}}
training:
  max_epochs: 1
  trainer: {{accelerator: cpu, devices: 1}}
  baselines: [{{type: additive}}, {{type: features, max_iter: 20}}]
"""
    p = tmp_path / "grid.yaml"
    p.write_text(spec)
    return p


def test_build_reports_counts_and_caches_the_compact_form(tmp_path):
    spec = load_spec(_grid_spec(tmp_path, sampling="{share: 0.2, val_pairs: 50}"))
    b = build_data(spec.data, progress=False)
    ds, g = b.dataset, b.report.grid
    assert isinstance(ds, GridDataset) and g["grid_pairs"] == len(ds) and g["listed_pairs"] == ds.num_listed
    assert g["query_genes"] == 25 and g["array_genes"] == 45 and g["genes_both_sides"] == 10
    assert g["self_pairs_dropped"] == 10 and g["reciprocal_grid_pairs"] == 45
    assert g["evaluated"]["val"]["pairs"] == 50 == b.splits["val"].numel() < g["evaluated"]["val"]["of"]
    assert any("neutral" in w for w in b.report.warnings)
    again = build_data(spec.data, progress=False)
    assert again.from_cache and isinstance(again.dataset, GridDataset)
    assert torch.equal(again.dataset.y, ds.y) and again.report.grid == json.loads(json.dumps(g))
    blob = b.cache_path.read_bytes()
    assert len(blob) < 16 * len(ds)  # listed values + index vectors, not one entry per pair
    assert set(b.dataset.state_dict()) == {"grid", "query_genes", "array_genes", "num_shared", "keys", "values",
                                           "neutral", "target_names", "num_genes", "sources"}


def test_grid_screen_must_be_alone(tmp_path):
    p = _grid_spec(tmp_path)
    text = p.read_text().replace("screens: [{format: sga_grid, path: sga.txt}]",
                                 "screens: [{format: sga_grid, path: sga.txt}, {format: sga_grid, path: sga.txt}]")
    p.write_text(text)
    with pytest.raises(DataError, match="only entry of data.screens"):
        build_data(load_spec(p).data, progress=False, cache=False)


def test_baselines_fit_on_a_grid(tmp_path):
    from cellgi.baselines import BaselineData, run_baselines

    spec = load_spec(_grid_spec(tmp_path))
    b = build_data(spec.data, progress=False, cache=False)
    data = BaselineData.of_bundle(b)
    rows, w = data.fit_rows()
    assert rows.numel() < b.splits["train"].numel() and float(w.sum()) == pytest.approx(b.splits["train"].numel())
    out = run_baselines(b, spec, data=data)
    for name in ("baseline_additive", "baseline_features"):
        assert set(out[name]) >= {"train", "val", "test", "test_one_unseen"}
        assert all(math.isfinite(out[name][s]["mse"]) for s in out[name])


def test_train_end_to_end_on_a_grid(tmp_path, capsys):
    from cellgi.cli.main import main

    spec = _grid_spec(tmp_path)
    assert main(["train", str(spec), "--run-dir", str(tmp_path / "run"), "--no-progress"]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    report = json.loads((tmp_path / "run" / "data_report.json").read_text())
    assert metrics["test_one_unseen.n"] + metrics["test_two_unseen.n"] == metrics["test.n"] == report["splits"]["test"]
    assert report["grid"]["grid_pairs"] == sum(report["splits"][k] for k in ("train", "val", "test")) + report["split_dropped"]
    assert "baseline_features.test_two_unseen.mse" in metrics


# ------------------------------------------------------------------------------------------- real data
@pytest.mark.realdata
def test_costanzo2010_dev_counts(yeast_dir):
    raw = read_sga_grid(yeast_dir / "interactions" / "costanzo2010_sga_stringent_dev.txt")
    assert raw.num_rows == 35667 and int((raw.value < 0).sum()) == 32427
    from cellgi.data.readers import read_sgd_features

    mapper = read_sgd_features(yeast_dir / "genes" / "SGD_features.tab", ["Verified", "Uncharacterized", "Dubious"]).mapper()
    load = map_grid(raw, mapper, ["gene_interaction"])
    c = load.counts
    assert (c["query_identifiers"], c["array_identifiers"]) == (1167, 2519)  # the published grid
    assert c["rows"] == 35667 and c["unmapped_rows"] + c["rows_used"] + c["self_rows_dropped"] == 35667
    assert c["grid_pairs"] == c["grid_cells"] - c["self_pairs_dropped"] - c["reciprocal_grid_pairs"]
    assert c["reciprocal_pairs"] > 1000 and c["alleles_merged"] > 0
    assert 0.005 < c["listed_fraction"] < 0.02 and c["listed_negative"] > 0.85 * c["listed_pairs"]


def test_spec_entry_declares_list_files_and_checks_alleles(tmp_path):
    from pydantic import ValidationError

    from cellgi.data.screens import screen_input_files
    from cellgi.spec.data import screen_entry

    s = screen_entry({"format": "sga_grid", "path": "s.txt", "query_genes": "q.txt", "alleles": ["TSQ", "damp"]})
    assert screen_input_files(s, tmp_path) == [tmp_path / "s.txt", tmp_path / "q.txt"]
    assert s.alleles == ["tsq", "damp"] and s.neutral == 0.0
    for bad in ("median", [], ["tsq", "TSQ"]):
        with pytest.raises(ValidationError):
            screen_entry({"format": "sga_grid", "path": "s.txt", "alleles": bad})


def test_datamodule_feeds_weighted_epochs_and_whole_eval_grids(tmp_path):
    from cellgi.data.datamodule import CellDataModule

    spec = load_spec(_grid_spec(tmp_path))
    b = build_data(spec.data, progress=False, cache=False)
    dm = CellDataModule.from_spec(spec.data, bundle=b)
    batches = list(dm.train_dataloader())
    w = torch.cat([x.weight for x in batches])
    idx = torch.cat([x.sample_idx for x in batches])
    assert float(w.sum()) == pytest.approx(b.splits["train"].numel(), rel=1e-5)
    assert bool((w[~b.dataset.listed(idx)] > 3).all())  # neutral pairs weighted about 1/0.2
    val = torch.cat([x.sample_idx for x in dm.val_dataloader()])
    assert torch.equal(val, b.splits["val"])  # the whole validation grid, in order, once


def test_neutral_sampling_on_a_flat_screen_is_reported(tmp_path):
    p = _grid_spec(tmp_path)
    genes = [f"Y{i:03d}" for i in range(60)]
    (tmp_path / "pairs.tsv").write_text("a\tb\teps\n" + "".join(f"{genes[i]}\t{genes[i + 1]}\t-0.1\n" for i in range(50)))
    p.write_text(p.read_text().replace("screens: [{format: sga_grid, path: sga.txt}]",
                                       "screens: [{format: table, path: pairs.tsv, gene_columns: [a, b], "
                                       "target_columns: {gene_interaction: eps}}]")
                 .replace("split: {kind: gene_folds, num_folds: 4, fold: 0, val_fraction: 0.2, seed: 0}",
                          "split: {kind: random}"))
    b = build_data(load_spec(p).data, progress=False, cache=False)
    assert any("neutral_sampling is set but applies to grid screens" in w for w in b.report.warnings)


def test_sample_identity_of_a_grid_is_that_of_its_pairs():
    """A saved split keeps samples by identity (cellgi.data.splits.sample_keys): a grid's pair has the key the
    same gene pair has in a flat data set, in either orientation, so a resume maps a grid run's splits."""
    from cellgi.data.perturbations import PerturbationDataset
    from cellgi.data.splits import sample_keys

    ds = random_grid(7, 9, 4, 0.2, 20)
    names = [f"Y{i:03d}" for i in range(20)]
    pairs = ds.pairs(torch.arange(len(ds)))
    flat = PerturbationDataset.from_sets(pairs.flip(1).tolist(), torch.zeros(len(ds), 1), ["gene_interaction"], 20)
    got = sample_keys(ds, names)
    assert got.dtype == np.uint64 and len(set(got.tolist())) == len(ds)
    np.testing.assert_array_equal(got, sample_keys(flat, names))
