"""CellDataModule: normalised, seeded batches; DDP shards that count every sample exactly once."""

import pytest
import torch

from cellgi.data.batch import PerturbationBatch
from cellgi.data.datamodule import CellDataModule, EvalShardSampler, TrainShardSampler
from cellgi.spec import validate_spec


def _spec(**extra):
    return validate_spec({"name": "t", "data": {
        "synthetic": {"num_genes": 150, "num_samples": 400, "edge_types": {"a": 400, "r": 100}, "directed": ["r"]},
        "batch_size": 32, "eval_batch_size": 100, "cache": False, **extra}}).data


def test_loaders_normalised_shuffled_seeded():
    dm = CellDataModule.from_spec(_spec(), seed=5)
    dm.setup()
    batches = list(dm.train_dataloader())
    assert all(isinstance(b, PerturbationBatch) for b in batches)
    seen = torch.cat([b.sample_idx for b in batches])
    assert torch.equal(seen.sort().values, dm.splits["train"].sort().values)
    assert not torch.equal(seen, dm.splits["train"])  # shuffled
    y = torch.cat([b.y for b in batches])
    assert abs(float(y.mean())) < 1e-4 and abs(float(y.std(unbiased=False)) - 1) < 1e-3  # train-normalised
    b0 = batches[0]
    raw = dm.dataset.y[b0.sample_idx]
    assert torch.allclose(dm.normalizer.inverse(b0.y), raw, atol=1e-6)
    dm2 = CellDataModule.from_spec(_spec(), seed=5, bundle=dm.bundle)
    assert torch.equal(next(iter(dm2.train_dataloader())).sample_idx, b0.sample_idx)
    val = list(dm.val_dataloader())
    assert [b.num_samples for b in val] == [40] and torch.equal(val[0].sample_idx, dm.splits["val"])
    tests = dm.test_dataloader()
    assert len(tests) == 1 and sum(b.num_samples for b in tests[0]) == dm.splits["test"].numel()


def test_workers_and_persistence_from_spec():
    dm = CellDataModule.from_spec(_spec(num_workers=1, persistent_workers=True))
    dm.setup()
    loader = dm.train_dataloader()
    assert loader.num_workers == 1 and loader.persistent_workers
    assert sum(b.num_samples for b in loader) == dm.splits["train"].numel()
    assert not CellDataModule.from_spec(_spec(persistent_workers=True), bundle=dm.bundle).train_dataloader().persistent_workers


def test_needs_a_bundle_or_a_spec():
    with pytest.raises(ValueError, match="bundle or a data spec"):
        CellDataModule()


@pytest.mark.parametrize("n,world,bs", [(51, 2, 16), (7, 3, 2), (2, 4, 5), (64, 2, 32)])
def test_eval_shards_count_every_sample_once(n, world, bs):
    idx = torch.arange(100, 100 + n)
    real, lengths = [], []
    for rank in range(world):
        batches = list(EvalShardSampler(idx, bs, rank=rank, world_size=world))
        lengths.append(len(batches))
        assert len(batches) == len(EvalShardSampler(idx, bs, rank=rank, world_size=world))
        for b in batches:
            real += b.indices[: len(b.indices) - b.num_pad]  # padded rows are masked, never counted
    assert sorted(real) == idx.tolist()
    assert len(set(lengths)) == 1  # every rank runs the same number of steps


def test_padded_eval_rows_are_masked():
    dm = CellDataModule.from_spec(_spec())
    dm.setup()
    sampler = EvalShardSampler(dm.splits["test"][:3], 4, rank=1, world_size=2)  # rank 1 holds 1 real + 1 pad
    (req,) = list(sampler)
    assert req.num_pad == 1
    batch = dm._loader(sampler).dataset[req]
    assert torch.isnan(batch.y[-1]).all() and float(batch.weight[-1]) == 0.0
    assert not torch.isnan(batch.y[0]).all()


def test_train_shards_equal_length_and_epoch_seeded():
    idx = torch.arange(41)
    shards = [TrainShardSampler(idx, 8, seed=3, rank=r, world_size=2) for r in range(2)]
    got = [[i for b in s for i in b.indices] for s in shards]
    assert len(got[0]) == len(got[1]) == 21 and set(got[0]) | set(got[1]) == set(range(41))
    again = TrainShardSampler(idx, 8, seed=3, rank=0, world_size=2)
    assert [b.indices for b in again] == [b.indices for b in shards[0]]
    again.set_epoch(1)
    assert [b.indices for b in again] != [b.indices for b in shards[0]]
    with pytest.raises(ValueError, match="empty"):
        TrainShardSampler(torch.arange(0), 8)
