"""The one Lightning DataModule of cellgi: training, evaluation and DDP over a :class:`DataBundle`.

Loaders iterate over *index batches*: a sampler yields :class:`IndexBatch` requests (lists of sample
indices) and the data set cuts the whole :class:`~cellgi.data.batch.PerturbationBatch` from its flat
tensors in one vectorised step (targets normalised by the training-split normaliser). Nothing
graph-sized is built per sample; the graph is :attr:`CellDataModule.graph`, shared by every batch.

Lightning's automatic ``DistributedSampler`` pads evaluation sets by repeating samples, which would
count some samples twice. The samplers here shard explicitly instead (the trainer is built with
``use_distributed_sampler=False``):

- training (:class:`TrainShardSampler`): every epoch a permutation seeded by ``(seed, epoch)`` (so a
  resumed run sees the same order an uninterrupted one would), padded to a multiple of the world size
  and dealt round-robin: every rank gets the same number of batches, as DDP's gradient all-reduce needs.
- evaluation (:class:`EvalShardSampler`): each rank takes a contiguous slice of the split; slices are
  padded to equal length with *masked* rows (target NaN, weight 0) that no loss or metric counts, so each
  sample is evaluated exactly once over all ranks while every rank still runs the same number of steps.

With one process both reduce to a seeded shuffle (training) and the split in order (evaluation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Sequence

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from cellgi.data.batch import PerturbationBatch
from cellgi.data.build import DataBundle, build_data
from cellgi.data.cellgraph import CellGraph
from cellgi.data.grid import is_grid
from cellgi.data.normalize import TargetNormalizer
from cellgi.data.perturbations import PerturbationDataset

if TYPE_CHECKING:
    from cellgi.spec.data import DataSpec

__all__ = ["CellDataModule", "EvalShardSampler", "IndexBatch", "NormalizedBatches", "TrainShardSampler"]


@dataclass(frozen=True)
class IndexBatch:
    """A batch request: sample indices, of which the last ``num_pad`` are padding (masked out), and
    optional sampling weights ``[B]`` that multiply the samples' own (a grid's epoch sampler sets them)."""

    indices: list[int] | Tensor
    num_pad: int = 0
    weights: Tensor | None = None


def _check(batch_size: int, rank: int, world_size: int) -> None:
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside world size {world_size}")


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
        indices: Tensor | Sequence[int],
        batch_size: int,
        *,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
    ):
        _check(batch_size, rank, world_size)
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

    def __init__(self, indices: Tensor | Sequence[int], batch_size: int, *, rank: int = 0, world_size: int = 1):
        _check(batch_size, rank, world_size)
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
        filler = self.indices[:1]
        for lo in range(0, self.per_rank, self.batch_size):  # tensor slices: nothing per sample in Python
            hi = min(lo + self.batch_size, self.per_rank)
            chunk = self.mine[lo:hi]
            pad = (hi - lo) - chunk.numel()
            yield IndexBatch(torch.cat([chunk, filler.expand(pad)]) if pad else chunk, pad)

    def __len__(self) -> int:
        return -(-self.per_rank // self.batch_size)


class NormalizedBatches(Dataset):
    """``dataset[IndexBatch]`` -> :class:`PerturbationBatch`, targets normalised, padding masked."""

    def __init__(self, dataset: PerturbationDataset, normalizer: TargetNormalizer | None):
        self.dataset = dataset
        self.normalizer = normalizer

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, req: IndexBatch) -> PerturbationBatch:
        tf = self.normalizer.transform if self.normalizer is not None else None
        batch = self.dataset.batch(req.indices, y_transform=tf)
        if req.weights is not None:
            batch.weight = batch.weight * req.weights.to(batch.weight.dtype)
        if req.num_pad:
            batch.y[-req.num_pad :] = float("nan")
            batch.weight[-req.num_pad :] = 0.0
        return batch


def _identity(batch: PerturbationBatch) -> PerturbationBatch:
    return batch


class CellDataModule(L.LightningDataModule):
    """Train/val/test loaders of perturbation batches, sharded per rank (see the module docstring).

    Give either a built ``bundle`` or a ``spec`` (the ``data:`` section; the data is then built in
    :meth:`setup`, once per process). :meth:`from_spec` takes the batch sizes and workers from the spec.

    Args:
        bundle: the built data (graph, samples, splits, normaliser).
        spec: the :class:`~cellgi.spec.data.DataSpec` to build the data from when ``bundle`` is None.
        batch_size: training batch size per rank; ``eval_batch_size`` defaults to it.
        seed: shuffle seed (use the run's global seed).
        num_workers, persistent_workers: DataLoader workers.
        final_stages: splits :meth:`test_dataloader` returns, in order (``trainer.test`` evaluates them).
        progress: show data-building progress (``spec`` only).

    Attributes (after :meth:`setup` when built from a spec): ``bundle``, ``graph``, ``dataset``,
    ``normalizer``, ``target_names``, ``splits``.
    """

    def __init__(
        self,
        bundle: DataBundle | None = None,
        *,
        spec: DataSpec | None = None,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        seed: int = 0,
        num_workers: int = 0,
        persistent_workers: bool = False,
        final_stages: Sequence[str] = ("test",),
        progress: bool = False,
    ):
        super().__init__()
        if bundle is None and spec is None:
            raise ValueError("CellDataModule needs a built bundle or a data spec")
        if batch_size < 1 or (eval_batch_size is not None and eval_batch_size < 1):
            raise ValueError("batch sizes must be >= 1")
        self.bundle = bundle
        self.spec = spec
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.seed = seed
        self.num_workers = num_workers
        self.persistent_workers = bool(persistent_workers and num_workers > 0)
        self.final_stages = tuple(final_stages)
        self.progress = progress

    @classmethod
    def from_spec(
        cls, spec: DataSpec, *, bundle: DataBundle | None = None, seed: int = 0, progress: bool = False,
        final_stages: Sequence[str] = ("test",),
    ) -> "CellDataModule":
        """A data module with the batch sizes and workers of a ``data:`` spec."""
        return cls(
            bundle, spec=spec, batch_size=spec.batch_size, eval_batch_size=spec.eval_batch_size, seed=seed,
            num_workers=spec.num_workers, persistent_workers=spec.persistent_workers,
            final_stages=final_stages, progress=progress,
        )

    # -- lifecycle ----------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.bundle is None:
            assert self.spec is not None
            self.bundle = build_data(self.spec, progress=self.progress)

    def _need(self) -> DataBundle:
        if self.bundle is None:
            self.setup()
        assert self.bundle is not None
        return self.bundle

    @property
    def graph(self) -> CellGraph:
        return self._need().graph

    @property
    def dataset(self) -> PerturbationDataset:
        return self._need().dataset

    @property
    def normalizer(self) -> TargetNormalizer:
        return self._need().normalizer

    @property
    def target_names(self) -> list[str]:
        return self._need().target_names

    @property
    def splits(self) -> dict[str, Tensor]:
        return self._need().splits

    # -- loaders ------------------------------------------------------------------------------
    def _rank(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0, 1
        return int(trainer.global_rank), int(trainer.world_size)

    def _loader(self, sampler: Sampler) -> DataLoader:
        b = self._need()
        return DataLoader(
            NormalizedBatches(b.dataset, b.normalizer),
            batch_size=None,
            sampler=sampler,
            collate_fn=_identity,
            num_workers=self.num_workers,
            persistent_workers=self.persistent_workers,
        )

    def eval_loader(self, split: str) -> DataLoader:
        """The ordered (sharded under DDP) loader of one split."""
        rank, world = self._rank()
        return self._loader(EvalShardSampler(self.splits[split], self.eval_batch_size, rank=rank, world_size=world))

    def train_dataloader(self) -> DataLoader:
        rank, world = self._rank()
        b = self._need()
        if is_grid(b.dataset):  # every listed pair plus a weighted share of the neutral ones, per epoch
            # imported here to break a cycle: grid_sampler builds on this module's IndexBatch
            from cellgi.data.grid_sampler import GridEpochSampler

            ns = b.sampling
            return self._loader(GridEpochSampler(
                b.dataset, self.splits["train"], self.batch_size, share=1.0 if ns is None else ns.share,
                seed=self.seed if ns is None or ns.seed is None else ns.seed, rank=rank, world_size=world))
        return self._loader(
            TrainShardSampler(self.splits["train"], self.batch_size, seed=self.seed, rank=rank, world_size=world)
        )

    def val_dataloader(self) -> DataLoader:
        return self.eval_loader("val")

    def test_dataloader(self) -> list[DataLoader]:
        return [self.eval_loader(s) for s in self.final_stages]
