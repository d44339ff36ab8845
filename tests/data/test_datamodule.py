import torch

from cellgi.data.batch import PerturbationBatch
from cellgi.data.datamodule import CellDataModule, IndexBatchSampler
from cellgi.spec import validate_spec


def _spec(**extra):
    return validate_spec({"name": "t", "data": {
        "synthetic": {"num_genes": 150, "num_samples": 400, "edge_types": {"a": 400, "r": 100}, "directed": ["r"]},
        "batch_size": 32, "eval_batch_size": 100, **extra}}).data


def test_loaders_normalised_shuffled_seeded():
    dm = CellDataModule(_spec(), seed=5)
    dm.setup()
    batches = list(dm.train_dataloader())
    assert all(isinstance(b, PerturbationBatch) for b in batches)
    seen = torch.cat([b.sample_idx for b in batches])
    assert torch.equal(seen.sort().values, dm.splits["train"])
    assert not torch.equal(seen, dm.splits["train"])  # shuffled
    y = torch.cat([b.y for b in batches])
    assert abs(float(y.mean())) < 1e-4 and abs(float(y.std(unbiased=False)) - 1) < 1e-3  # train-normalised
    b0 = batches[0]
    raw = dm.dataset.y[b0.sample_idx]
    assert torch.allclose(dm.normalizer.inverse(b0.y), raw, atol=1e-6)
    dm2 = CellDataModule(_spec(), seed=5, bundle=dm.bundle)
    assert torch.equal(next(iter(dm2.train_dataloader())).sample_idx, b0.sample_idx)
    val = list(dm.val_dataloader())
    assert [b.num_samples for b in val] == [40] and torch.equal(val[0].sample_idx, dm.splits["val"])


def test_workers_and_persistence_from_spec():
    dm = CellDataModule(_spec(num_workers=1, persistent_workers=True))
    dm.setup()
    loader = dm.train_dataloader()
    assert loader.num_workers == 1 and loader.persistent_workers
    assert sum(b.num_samples for b in loader) == dm.splits["train"].numel()
    assert not CellDataModule(_spec(persistent_workers=True), bundle=dm.bundle).train_dataloader().persistent_workers


def test_index_batch_sampler():
    s = IndexBatchSampler(torch.arange(10), 4, drop_last=True)
    assert list(s) == [[0, 1, 2, 3], [4, 5, 6, 7]] and len(s) == 2
    assert len(IndexBatchSampler(torch.arange(10), 4)) == 3
