"""Lightning DataModule over a :class:`~cellgi.data.build.DataBundle`.

Loaders iterate over *index batches*: a batch sampler yields lists of sample indices and the data
set cuts the whole :class:`~cellgi.data.batch.PerturbationBatch` from its flat tensors in one
vectorised step (targets normalised by the training-split normaliser). Nothing graph-sized is built
per sample; the graph is :attr:`CellDataModule.graph`, shared by every batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, Sequence

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from cellgi.data.batch import PerturbationBatch
from cellgi.data.build import DataBundle, build_data
from cellgi.data.cellgraph import CellGraph
from cellgi.data.normalize import TargetNormalizer
from cellgi.data.perturbations import PerturbationDataset

if TYPE_CHECKING:
    from cellgi.spec.data import DataSpec

__all__ = ["CellDataModule", "IndexBatchSampler", "NormalizedBatches"]


class IndexBatchSampler(Sampler[list[int]]):
    """Batches of sample indices drawn from ``indices`` (a split).

    Args:
        indices: the sample indices to iterate (e.g. ``splits["train"]``).
        batch_size: samples per batch.
        shuffle: reshuffle every epoch with ``generator`` (seeded: the order is reproducible, and
            differs between epochs).
        drop_last: drop a last, smaller batch.
        generator: the torch generator used for shuffling.
    """

    def __init__(
        self,
        indices: Tensor | Sequence[int],
        batch_size: int,
        *,
        shuffle: bool = False,
        drop_last: bool = False,
        generator: torch.Generator | None = None,
    ):
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.indices = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = generator

    def __iter__(self) -> Iterator[list[int]]:
        idx = self.indices
        if self.shuffle:
            idx = idx[torch.randperm(idx.numel(), generator=self.generator)]
        for lo in range(0, idx.numel(), self.batch_size):
            chunk = idx[lo : lo + self.batch_size]
            if self.drop_last and chunk.numel() < self.batch_size:
                return
            yield chunk.tolist()

    def __len__(self) -> int:
        n = self.indices.numel()
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


class NormalizedBatches(Dataset):
    """``dataset[list_of_indices]`` -> a :class:`PerturbationBatch` with normalised ``y``."""

    def __init__(self, dataset: PerturbationDataset, normalizer: TargetNormalizer | None):
        self.dataset = dataset
        self.normalizer = normalizer

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, indices: Any) -> PerturbationBatch:
        tf = self.normalizer.transform if self.normalizer is not None else None
        return self.dataset.batch(indices, y_transform=tf)


def _identity(batch: PerturbationBatch) -> PerturbationBatch:
    return batch


class CellDataModule(L.LightningDataModule):
    """Train/val/test loaders of perturbation batches, built from a ``data:`` spec.

    Args:
        spec: the :class:`~cellgi.spec.data.DataSpec`.
        bundle: an already built :class:`DataBundle` (skips :func:`build_data`).
        seed: seed of the training shuffle (use the run's global seed).
        progress: show data-building progress.

    Attributes after :meth:`setup`: ``bundle``, ``graph``, ``dataset``, ``normalizer``,
    ``target_names``, ``splits``.
    """

    def __init__(self, spec: DataSpec, *, bundle: DataBundle | None = None, seed: int = 0, progress: bool = False):
        super().__init__()
        self.spec = spec
        self.seed = seed
        self.progress = progress
        self.bundle: DataBundle | None = bundle
        self._generator = torch.Generator().manual_seed(seed)

    # -- lifecycle ----------------------------------------------------------------------------
    def prepare_data(self) -> None:
        """Build and cache the processed data once (Lightning calls this on one process)."""
        if self.bundle is None:
            build_data(self.spec, progress=self.progress)

    def setup(self, stage: str | None = None) -> None:
        if self.bundle is None:
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
    def _loader(self, split: str, *, train: bool) -> DataLoader:
        b = self._need()
        bs = self.spec.batch_size if train or self.spec.eval_batch_size is None else self.spec.eval_batch_size
        sampler = IndexBatchSampler(b.splits[split], bs, shuffle=train, generator=self._generator if train else None)
        workers = self.spec.num_workers
        return DataLoader(
            NormalizedBatches(b.dataset, b.normalizer),
            batch_size=None,
            sampler=sampler,
            collate_fn=_identity,
            num_workers=workers,
            persistent_workers=bool(self.spec.persistent_workers and workers > 0),
            pin_memory=torch.cuda.is_available(),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)

    def loader_for(self, indices: Tensor | Sequence[int], batch_size: int | None = None) -> DataLoader:
        """An ordered loader over arbitrary sample indices (e.g. for evaluation of a subset)."""
        b = self._need()
        sampler = IndexBatchSampler(indices, batch_size or self.spec.eval_batch_size or self.spec.batch_size)
        return DataLoader(NormalizedBatches(b.dataset, b.normalizer), batch_size=None, sampler=sampler, collate_fn=_identity)

    def state_dict(self) -> dict[str, Any]:
        """Shuffle generator state (so a resumed run continues the same order)."""
        return {"generator": self._generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "generator" in state:
            self._generator.set_state(state["generator"])
