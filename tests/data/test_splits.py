import numpy as np
import pytest
import torch

from cellgi.data.errors import DataError
from cellgi.data.perturbations import PerturbationDataset
from cellgi.data.splits import load_splits, make_splits, save_splits


def _ds(n=3000, genes=300, seed=0):
    rng = np.random.default_rng(seed)
    sets = [rng.choice(genes, rng.choice([2, 3]), replace=False).tolist() for _ in range(n)]
    return PerturbationDataset.from_sets(sets, torch.zeros(n, 1), ["t"], genes)


def _genes(ds, idx):
    return {int(g) for i in idx.tolist() for g in ds.genes_of(i)}


def test_random_split_deterministic_disjoint():
    ds = _ds()
    a = make_splits(ds, "random", (0.8, 0.1, 0.1), seed=3).splits
    b = make_splits(ds, "random", (0.8, 0.1, 0.1), seed=3).splits
    c = make_splits(ds, "random", (0.8, 0.1, 0.1), seed=4).splits
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["test"], c["test"])
    allidx = torch.cat(list(a.values()))
    assert allidx.unique().numel() == len(ds) == allidx.numel()
    assert a["val"].numel() == 300 and a["test"].numel() == 300


def test_gene_holdout_no_test_gene_in_train():
    ds = _ds()
    r = make_splits(ds, "gene_holdout", (0.8, 0.1, 0.1), seed=0)
    s = r.splits
    train_genes = _genes(ds, s["train"])
    assert not train_genes & set(r.test_genes) and not train_genes & set(r.val_genes)
    for i in s["test"].tolist():  # every test sample touches a test gene
        assert set(ds.genes_of(i).tolist()) & set(r.test_genes)
    assert 0.08 < s["test"].numel() / len(ds) < 0.15
    assert sum(v.numel() for v in s.values()) == len(ds)


def test_strict_gene_holdout_pure_and_dropped_counted():
    ds = _ds(5000, 200)
    r = make_splits(ds, "strict_gene_holdout", (0.6, 0.2, 0.2), seed=1)
    s = r.splits
    tr, va, te = _genes(ds, s["train"]), _genes(ds, s["val"]), _genes(ds, s["test"])
    assert not (tr & te) and not (tr & va) and not (va & te)
    assert r.dropped == len(ds) - sum(v.numel() for v in s.values()) > 0


def test_column_split_and_empty_split_error():
    ds = _ds(10)
    with pytest.raises(DataError, match="no split value"):
        make_splits(ds, "column")
    ds.split = torch.tensor([0] * 8 + [2] * 2, dtype=torch.int8)
    with pytest.raises(DataError, match="split 'val' is empty"):
        make_splits(ds, "column")
    assert make_splits(ds, "column", (0.8, 0.0, 0.2)).sizes() == {"train": 8, "val": 0, "test": 2}


def test_save_load_npz_json(tmp_path):
    s = make_splits(_ds(100), "random").splits
    for name in ("s.npz", "s.json"):
        back = load_splits(save_splits(s, tmp_path / name))
        assert all(torch.equal(back[k], s[k]) for k in s)
    with pytest.raises(DataError):
        load_splits(tmp_path / "missing.npz")


def test_gene_holdout_with_hub_genes_keeps_fractions():
    rng = np.random.default_rng(0)
    hubs = [0, 1, 2]  # like screen queries: each in a third of the samples
    sets = [[hubs[i % 3], int(g)] for i, g in enumerate(rng.integers(3, 400, 3000))]
    sets = [s for s in sets if s[0] != s[1]]
    ds = PerturbationDataset.from_sets(sets, torch.zeros(len(sets), 1), ["t"], 400)
    r = make_splits(ds, "gene_holdout", (0.8, 0.1, 0.1), seed=0)
    frac = {k: v.numel() / len(ds) for k, v in r.splits.items()}
    assert 0.08 < frac["test"] < 0.12 and 0.08 < frac["val"] < 0.12, frac
    assert not set(hubs) & (set(r.test_genes) | set(r.val_genes))


def _pairs(genes=60, seed=0):
    rng = np.random.default_rng(seed)
    sets = [[a, b] for a in range(genes) for b in range(a + 1, genes) if rng.random() < 0.5]
    return PerturbationDataset.from_sets(sets, torch.zeros(len(sets), 1), ["t"], genes)


def test_gene_folds_pair_screen_one_and_two_unseen():
    ds = _pairs()
    r = make_splits(ds, "gene_folds", seed=1, num_folds=5, fold=2, val_fraction=0.2)
    sp = r.splits
    test_g, val_g = set(r.test_genes), set(r.val_genes)
    assert len(test_g) == 12 and not test_g & val_g
    train_genes = _genes(ds, sp["train"])
    assert not train_genes & (test_g | val_g)  # train never deletes a held-out gene
    assert not _genes(ds, sp["val"]) & test_g  # validation is gene-disjoint from test
    for i in sp["test_one_unseen"].tolist():
        assert len(set(ds.genes_of(i).tolist()) & test_g) == 1
    for i in sp["test_two_unseen"].tolist():
        assert set(ds.genes_of(i).tolist()) <= test_g
    assert sp["test_one_unseen"].numel() > 0 and sp["test_two_unseen"].numel() > 0
    assert sp["test"].numel() == sp["test_one_unseen"].numel() + sp["test_two_unseen"].numel()
    every = torch.cat([sp["train"], sp["val"], sp["test"]])
    assert every.unique().numel() == every.numel() == len(ds) - r.dropped
    assert r.dropped > 0  # pairs of a test and a validation gene


def test_gene_folds_partition_genes_over_folds_and_keep_shared_queries():
    # a Kuzmin-like screen: 3 query genes paired with every array gene
    sets = [[q, a] for q in range(3) for a in range(3, 83)]
    ds = PerturbationDataset.from_sets(sets, torch.zeros(len(sets), 1), ["t"], 83)
    seen: list[int] = []
    for k in range(4):
        r = make_splits(ds, "gene_folds", seed=0, num_folds=4, fold=k, val_fraction=0.1)
        assert not set(r.test_genes) & {0, 1, 2}  # queries touch > 5 % of samples: shared
        assert r.splits["test_two_unseen"].numel() == 0
        assert torch.equal(r.splits["test"], r.splits["test_one_unseen"])
        seen += r.test_genes
    assert sorted(seen) == list(range(3, 83))  # every array gene is a test gene exactly once


def test_gene_folds_errors():
    ds = _pairs(genes=8)
    with pytest.raises(DataError, match="fold must be in"):
        make_splits(ds, "gene_folds", num_folds=3, fold=3)
    with pytest.raises(DataError, match="fewer than num_folds"):
        make_splits(ds, "gene_folds", num_folds=5, shared_gene_fraction=0.01)


# ------------------------------------------------------------------ saved splits mapped by sample identity


def _named(sets, n_genes=40):
    names = [f"G{i:03d}" for i in range(n_genes)]
    ds = PerturbationDataset.from_sets(sets, torch.zeros(len(sets), 1), ["t"], n_genes)
    return ds, names


def _key_sets(ds, names, idx):
    return sorted(tuple(sorted(names[int(g)] for g in ds.genes_of(int(i)))) for i in idx)


@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_saved_splits_follow_their_samples_when_rows_move(tmp_path, suffix):
    from cellgi.data.splits import map_saved_splits

    rng = np.random.default_rng(0)
    sets = [sorted(rng.choice(40, 2, replace=False).tolist()) for _ in range(200)]
    sets = [list(s) for s in dict.fromkeys(tuple(s) for s in sets)]
    ds, names = _named(sets)
    split = make_splits(ds, "random", (0.6, 0.2, 0.2), seed=1).splits
    path = save_splits(split, tmp_path / f"s{suffix}", ds, names)
    same = map_saved_splits(path, ds, names)
    assert same.unchanged and all(torch.equal(same.splits[k], split[k]) for k in split)
    order = rng.permutation(len(sets))
    moved, _ = _named([sets[i] for i in order] + [[0, 1, 2]])  # rows shuffled, one new sample at the end
    got = map_saved_splits(path, moved, names)
    assert not got.unchanged and got.new_samples == 1
    for k in split:
        assert _key_sets(moved, names, got.splits[k]) == _key_sets(ds, names, split[k])


def test_a_gene_set_in_two_splits_whose_count_changed_is_refused(tmp_path):
    from cellgi.data.splits import map_saved_splits

    sets = [[1, 2], [1, 2], [3, 4], [5, 6], [7, 8]]
    ds, names = _named(sets)
    split = {"train": torch.tensor([0, 2, 3]), "val": torch.tensor([4]), "test": torch.tensor([1])}
    path = save_splits(split, tmp_path / "s.npz", ds, names)
    fewer, _ = _named([[1, 2], [3, 4], [5, 6], [7, 8]])
    with pytest.raises(DataError, match="no longer in|cannot be told"):
        map_saved_splits(path, fewer, names)
    more, _ = _named(sets + [[1, 2]])
    with pytest.raises(DataError, match="cannot be told"):
        map_saved_splits(path, more, names)


def test_an_old_splits_file_without_identities_is_refused_when_the_data_shrank(tmp_path):
    from cellgi.data.splits import map_saved_splits

    ds, names = _named([[1, 2], [3, 4], [5, 6]])
    path = save_splits({"train": torch.tensor([0, 2]), "val": torch.tensor([], dtype=torch.long),
                        "test": torch.tensor([1])}, tmp_path / "s.npz")
    assert map_saved_splits(path, ds, names).unchanged
    smaller, _ = _named([[1, 2], [3, 4]])
    with pytest.raises(DataError, match="does not say which sample is which"):
        map_saved_splits(path, smaller, names)
