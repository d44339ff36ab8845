"""Data loading for training runs: DDP-aware index-batch samplers over a :class:`DataBundle`.

Lightning's automatic ``DistributedSampler`` pads evaluation sets by repeating samples, which would
count some test samples twice. The run's loaders shard explicitly instead
(``Trainer(use_distributed_sampler=False)``):

- training: every epoch a permutation seeded by ``(seed, epoch)`` (so a resumed run sees the same order
  an uninterrupted one would), padded to a multiple of the world size and dealt round-robin: every rank
  gets the same number of batches, as DDP's gradient all-reduce needs.
- evaluation: each rank takes a contiguous slice of the split; slices are padded to equal length with
  *masked* rows (target NaN, weight 0) that no loss or metric counts, so each sample is evaluated exactly
  once over all ranks while every rank still runs the same number of steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from cellgi.data.batch import PerturbationBatch
from cellgi.data.build import DataBundle

__all__ = ["EvalShardSampler", "IndexBatch", "RunDataModule", "TrainShardSampler", "make_eval_loader"]


@dataclass(frozen=True)
class IndexBatch:
    """A batch request: sample indices, of which the last ``num_pad`` are padding (masked out)."""

    indices: list[int]
    num_pad: int = 0


class TrainShardSampler(Sampler[IndexBatch]):
    """Shuffled training batches of one rank (see the module docstring).

    Args:
        indices: the split's sample indices.
        batch_size: samples per batch (per rank).
        seed: base seed; epoch ``e`` uses the permutation of ``(seed, e)``.
        rank, world_size: this process and the number of processes.
        shuffle: False keeps the split order (tests, debugging).
    """

    def __init__(
        self,
        indices: Tensor,
        batch_size: int,
        *,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
    ):
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        self.indices = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        if self.indices.numel() == 0:
            raise ValueError("the training split is empty")
        self.batch_size, self.seed, self.rank, self.world_size, self.shuffle = batch_size, seed, rank, world_size, shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning before each epoch."""
        self.epoch = int(epoch)

    def _mine(self) -> Tensor:
        idx = self.indices
        if self.shuffle:
            g = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) % (2**63 - 1))
            idx = idx[torch.randperm(idx.numel(), generator=g)]
        per_rank = -(-idx.numel() // self.world_size)
        total = per_rank * self.world_size
        if total > idx.numel():  # pad by wrapping around (training only)
            idx = torch.cat([idx, idx[: total - idx.numel()]])
        return idx[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[IndexBatch]:
        mine = self._mine()
        for lo in range(0, mine.numel(), self.batch_size):
            yield IndexBatch(mine[lo : lo + self.batch_size].tolist())

    def __len__(self) -> int:
        per_rank = -(-self.indices.numel() // self.world_size)
        return -(-per_rank // self.batch_size)


class EvalShardSampler(Sampler[IndexBatch]):
    """Ordered evaluation batches of one rank; every sample once over all ranks (module docstring)."""

    def __init__(self, indices: Tensor, batch_size: int, *, rank: int = 0, world_size: int = 1):
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        self.indices = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        self.batch_size, self.rank, self.world_size = batch_size, rank, world_size
        n = self.indices.numel()
        self.per_rank = -(-n // world_size) if n else 0
        lo = min(n, rank * self.per_rank)
        hi = min(n, lo + self.per_rank)
        self.mine = self.indices[lo:hi]

    def __iter__(self) -> Iterator[IndexBatch]:
        if self.per_rank == 0:
            return
        real = self.mine.tolist()
        filler = int(self.indices[0])
        for lo in range(0, self.per_rank, self.batch_size):
            hi = min(lo + self.batch_size, self.per_rank)
            chunk = real[lo:hi]
            pad = (hi - lo) - len(chunk)
            yield IndexBatch(chunk + [filler] * pad, pad)

    def __len__(self) -> int:
        return -(-self.per_rank // self.batch_size)


class _Batches(Dataset):
    """``dataset[IndexBatch]`` -> :class:`PerturbationBatch`, targets normalised, padding masked."""

    def __init__(self, bundle: DataBundle):
        self.dataset = bundle.dataset
        self.normalizer = bundle.normalizer

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, req: IndexBatch) -> PerturbationBatch:
        batch = self.dataset.batch(req.indices, y_transform=self.normalizer.transform)
        if req.num_pad:
            batch.y[-req.num_pad :] = float("nan")
            batch.weight[-req.num_pad :] = 0.0
        return batch


def _identity(batch: PerturbationBatch) -> PerturbationBatch:
    return batch


def make_eval_loader(
    bundle: DataBundle, indices: Tensor, batch_size: int, *, rank: int = 0, world_size: int = 1, num_workers: int = 0
) -> DataLoader:
    """An ordered, sharded evaluation loader over ``indices`` of ``bundle.dataset``."""
    return DataLoader(
        _Batches(bundle),
        batch_size=None,
        sampler=EvalShardSampler(indices, batch_size, rank=rank, world_size=world_size),
        collate_fn=_identity,
        num_workers=num_workers,
    )


class RunDataModule(L.LightningDataModule):
    """Train/val/test loaders of one run, sharded per rank (see the module docstring).

    Args:
        bundle: the built data (graph, samples, splits, normaliser).
        batch_size: training batch size per rank; ``eval_batch_size`` defaults to it.
        seed: shuffle seed.
        num_workers: DataLoader workers.
        final_stages: splits evaluated by ``trainer.test`` (in dataloader order), default ``("test",)``.
    """

    def __init__(
        self,
        bundle: DataBundle,
        *,
        batch_size: int,
        eval_batch_size: int | None = None,
        seed: int = 0,
        num_workers: int = 0,
        persistent_workers: bool = False,
        final_stages: tuple[str, ...] = ("test",),
    ):
        super().__init__()
        self.bundle = bundle
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.seed = seed
        self.num_workers = num_workers
        self.persistent_workers = persistent_workers and num_workers > 0
        self.final_stages = tuple(final_stages)

    def _rank(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0, 1
        return int(trainer.global_rank), int(trainer.world_size)

    def _loader(self, sampler: Sampler) -> DataLoader:
        return DataLoader(
            _Batches(self.bundle),
            batch_size=None,
            sampler=sampler,
            collate_fn=_identity,
            num_workers=self.num_workers,
            persistent_workers=self.persistent_workers,
        )

    def train_dataloader(self) -> DataLoader:
        rank, world = self._rank()
        return self._loader(
            TrainShardSampler(self.bundle.splits["train"], self.batch_size, seed=self.seed, rank=rank, world_size=world)
        )

    def val_dataloader(self) -> Any:
        rank, world = self._rank()
        return self._loader(EvalShardSampler(self.bundle.splits["val"], self.eval_batch_size, rank=rank, world_size=world))

    def test_dataloader(self) -> Any:
        rank, world = self._rank()
        return [
            self._loader(EvalShardSampler(self.bundle.splits[s], self.eval_batch_size, rank=rank, world_size=world))
            for s in self.final_stages
        ]
