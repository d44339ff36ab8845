"""Training epochs of a grid screen: every listed pair plus a fresh, weighted share of the neutral pairs.

Epoch ``e`` (seeded by ``(seed, e)``, so a resumed run sees what an uninterrupted one would) draws
``m = round(share * N_neutral)`` of the ``N_neutral`` neutral training pairs uniformly without replacement,
shuffles them and all ``N_listed`` listed training pairs, and deals both strata over the same ``nb``
batches (``numpy.array_split``: chunk sizes differ by at most one). Batch ``j`` with ``l_j`` listed and
``k_j`` neutral pairs weights them

.. math::

    w_{listed} = \\frac{N_{listed} / nb}{l_j}, \\qquad w_{neutral} = \\frac{N_{neutral} / nb}{k_j}

(about 1 and ``1/share``). The weights of every batch with both strata sum to ``N / nb``, a constant, so
the weighted batch mean the loss takes (``sum w l / sum w``) has as its expectation the mean of ``l`` over
the *whole* training grid: the loss is unbiased, not only consistent. ``nb`` is a multiple of the world
size and rank ``r`` takes batches ``r, r + world, ...``: every rank runs the same number of steps.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Sampler

from cellgi.data.datamodule import IndexBatch, _check
from cellgi.data.grid import GridDataset

__all__ = ["GridEpochSampler"]


class GridEpochSampler(Sampler[IndexBatch]):
    """Stratified, weighted training batches over a grid (see the module docstring).

    Args:
        dataset: the :class:`~cellgi.data.grid.GridDataset`.
        train_idx: the training pair indices.
        batch_size: pairs per batch (about; per rank).
        share: share of the neutral training pairs drawn each epoch (1: all of them, weight 1).
        seed, rank, world_size: as :class:`~cellgi.data.datamodule.TrainShardSampler`.
    """

    def __init__(self, dataset: GridDataset, train_idx: Tensor, batch_size: int, *, share: float = 1.0, seed: int = 0,
                 rank: int = 0, world_size: int = 1):
        _check(batch_size, rank, world_size)
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], got {share}")
        idx = torch.as_tensor(train_idx, dtype=torch.int64).reshape(-1)
        if idx.numel() == 0:
            raise ValueError("the training split is empty")
        hit = dataset.listed(idx)
        self.listed, self.neutral = idx[hit], idx[~hit]
        self.batch_size, self.share, self.seed = batch_size, float(share), int(seed)
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        n_l, n_n = self.listed.numel(), self.neutral.numel()
        self.num_drawn = min(n_n, max(1, int(round(self.share * n_n)))) if n_n else 0
        per_epoch = n_l + self.num_drawn
        if per_epoch < world_size:
            raise ValueError(f"{per_epoch} training pairs per epoch cannot feed {world_size} processes")
        nb = -(-per_epoch // batch_size)
        self.num_batches = -(-nb // world_size) * world_size

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning before each epoch: a new draw of neutral pairs."""
        self.epoch = int(epoch)

    def epoch_batches(self) -> list[tuple[Tensor, Tensor]]:
        """All ranks' ``(indices, weights)`` batches of the current epoch, in dealing order."""
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) % (2**63 - 1))
        listed = self.listed[torch.randperm(self.listed.numel(), generator=g)]
        drawn = self.neutral[torch.randperm(self.neutral.numel(), generator=g)[: self.num_drawn]]
        nb = self.num_batches
        out = []
        for lp, npart in zip(np.array_split(listed.numpy(), nb), np.array_split(drawn.numpy(), nb)):
            w_l = (self.listed.numel() / nb) / max(lp.size, 1)
            w_n = (self.neutral.numel() / nb) / max(npart.size, 1)
            idx = torch.from_numpy(np.concatenate([lp, npart]))
            w = torch.cat([torch.full((lp.size,), w_l), torch.full((npart.size,), w_n)])
            out.append((idx, w))
        return out

    def __iter__(self) -> Iterator[IndexBatch]:
        for j, (idx, w) in enumerate(self.epoch_batches()):
            if j % self.world_size == self.rank and idx.numel():
                yield IndexBatch(idx, 0, w)

    def __len__(self) -> int:
        return self.num_batches // self.world_size
