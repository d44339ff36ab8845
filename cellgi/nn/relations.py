"""How the deleted genes of a sample relate to each other in every gene graph (the pair/set path).

For a padded set ``P [B, K]`` of deleted genes, :class:`PairRelations` returns ``[B, K, K, 4 G]``: for
every ordered pair ``(i, j)`` and every edge type ``g`` (as an undirected graph: a directed edge either
way counts)

- ``edge``: 1 when ``i`` and ``j`` are adjacent;
- ``weight``: the edge weight (the larger of the two directions; 1 for unweighted graphs; 0 when absent);
- ``shared``: ``log1p`` of the number of common neighbours;
- ``jaccard``: common neighbours / neighbours of either.

With ``values [N, V]`` (per-gene feature columns, e.g. single-mutant phenotypes: the pair head's
``gene_values``), ``3 V`` more features follow: ``min``, ``max`` and ``product`` of the two genes' values,
per column.

The features are symmetric in ``(i, j)``; the diagonal is zero. Each sample's rows of the symmetrised
adjacency are gathered dense, ``[B, K, N]`` per edge type (about 2.5 MB per type at yeast scale for
``B = 32, K = 3``), so the cost is linear in ``B * K * N`` and nothing is precomputed per pair.

Pairs (``K = 2``, a genome-wide grid's samples) take a sparse path instead, with the same values: the edge
and its weight are a binary search among the sorted edge keys, common neighbours a merge of the two
genes' sorted neighbour lists (binary searches of one in the other), so the cost is linear in the
pairs' degrees, not in ``N``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["PairRelations", "RELATION_FEATURES"]

#: per edge type, in this order
RELATION_FEATURES = ("edge", "weight", "shared", "jaccard")


class PairRelations(nn.Module):
    """Pairwise relation features of deleted genes; see the module docstring.

    Args:
        graph: the :class:`~cellgi.data.cellgraph.CellGraph`.
        edge_types: the edge types to describe, in order.
        values: optional per-gene values ``[N, V]`` described pairwise (min, max, product).
        value_names: names of the ``V`` columns (default ``value0``, ...).
    """

    def __init__(self, graph, edge_types: Sequence[str], values: Tensor | None = None,
                 value_names: Sequence[str] | None = None):
        super().__init__()
        self.edge_types = list(edge_types)
        if values is not None and (values.dim() != 2 or values.shape[0] != graph.num_nodes):
            raise ValueError(f"gene values must be [{graph.num_nodes}, V], got {tuple(values.shape)}")
        v = values.detach().to(torch.float32) if values is not None else torch.zeros(graph.num_nodes, 0)
        self.register_buffer("values", v.clone(), persistent=False)
        self.value_names = list(value_names) if value_names is not None else [f"value{i}" for i in range(v.shape[1])]
        if len(self.value_names) != v.shape[1]:
            raise ValueError(f"{len(self.value_names)} value names for {v.shape[1]} value columns")
        self.num_genes = graph.num_nodes
        n = graph.num_nodes
        for t, name in enumerate(self.edge_types):
            et = graph.edge_types[name]
            ei = et.edge_index.to(torch.long)
            w = et.edge_weight if et.edge_weight is not None else torch.ones(ei.shape[1])
            both = torch.cat([ei, ei.flip(0)], 1)
            wb = torch.cat([w, w]).to(torch.float32)
            keep = both[0] != both[1]
            both, wb = both[:, keep], wb[keep]
            key = both[0] * n + both[1]
            uniq, inv = torch.unique(key, return_inverse=True)
            wmax = torch.zeros(uniq.numel()).scatter_reduce(0, inv, wb, reduce="amax", include_self=False)
            rows, cols = uniq // n, uniq % n  # sorted by row
            crow = torch.zeros(n + 1, dtype=torch.long)
            crow[1:] = torch.cumsum(torch.bincount(rows, minlength=n), 0)
            self.register_buffer(f"crow_{t}", crow, persistent=False)
            self.register_buffer(f"col_{t}", cols, persistent=False)
            self.register_buffer(f"w_{t}", wmax, persistent=False)
            self.register_buffer(f"key_{t}", uniq, persistent=False)

    @property
    def num_features(self) -> int:
        return len(RELATION_FEATURES) * len(self.edge_types) + 3 * self.values.shape[1]

    @property
    def feature_names(self) -> list[str]:
        return [f"{f}.{t}" for t in self.edge_types for f in RELATION_FEATURES] + [
            f"{f}.{n}" for n in self.value_names for f in ("min", "max", "product")]

    def _dense_rows(self, t: int, genes: Tensor) -> tuple[Tensor, Tensor]:
        """Binary and weighted rows ``[M, N]`` of the symmetrised adjacency of edge type ``t``."""
        crow, col, w = getattr(self, f"crow_{t}"), getattr(self, f"col_{t}"), getattr(self, f"w_{t}")
        m = genes.numel()
        start = crow[genes]
        count = crow[genes + 1] - start
        total = int(count.sum())
        row = torch.repeat_interleave(torch.arange(m, device=genes.device), count)
        offs = torch.cumsum(count, 0) - count
        pos = torch.arange(total, device=genes.device) - torch.repeat_interleave(offs, count) + torch.repeat_interleave(start, count)
        flat = row * self.num_genes + col[pos]
        binary = torch.zeros(m * self.num_genes, device=genes.device)
        binary[flat] = 1.0
        weight = torch.zeros(m * self.num_genes, device=genes.device)
        weight[flat] = w[pos]
        return binary.view(m, self.num_genes), weight.view(m, self.num_genes)

    @staticmethod
    def _search(seq: Tensor, values: Tensor) -> Tensor:
        if seq.device.type == "cpu":  # torch's CPU kernel is two orders of magnitude slower here (torch 2.13)
            return torch.from_numpy(np.searchsorted(seq.numpy(), values.numpy()).astype(np.int64))
        return torch.searchsorted(seq, values)

    def _pair_graph_features(self, i: Tensor, j: Tensor) -> list[Tensor]:
        """``edge, weight, shared, jaccard`` of the pairs ``(i [B], j [B])`` per edge type, each ``[B]``
        (the sparse path of the module docstring; equal to the dense one)."""
        n, b, dev = self.num_genes, i.numel(), i.device
        out: list[Tensor] = []
        for t in range(len(self.edge_types)):
            crow, col, w, key = (getattr(self, f"{p}_{t}") for p in ("crow", "col", "w", "key"))
            if key.numel() == 0:
                out += [torch.zeros(b, device=dev)] * 4
                continue
            q = i * n + j
            pos = self._search(key, q).clamp_max(key.numel() - 1)
            hit = key[pos] == q
            edge = hit.to(torch.float32)
            wgt = torch.where(hit, w[pos], torch.zeros_like(w[pos]))

            def neighbour_keys(g: Tensor) -> tuple[Tensor, Tensor]:
                start, count = crow[g], crow[g + 1] - crow[g]
                row = torch.repeat_interleave(torch.arange(b, device=dev), count)
                offs = torch.cumsum(count, 0) - count
                at = torch.arange(int(count.sum()), device=dev) - offs[row] + start[row]
                return row * n + col[at], row  # sorted: rows in order, columns sorted within a row

            ki, _ = neighbour_keys(i)
            kj, rj = neighbour_keys(j)
            if ki.numel() and kj.numel():
                p = self._search(ki, kj).clamp_max(ki.numel() - 1)
                common = rj[ki[p] == kj]
                shared = torch.bincount(common, minlength=b).to(torch.float32)
            else:
                shared = torch.zeros(b, device=dev)
            deg_i, deg_j = (crow[i + 1] - crow[i]).to(torch.float32), (crow[j + 1] - crow[j]).to(torch.float32)
            union = (deg_i + deg_j - shared).clamp_min(1.0)
            out += [edge, wgt, torch.log1p(shared), shared / union]
        return out

    def forward(self, padded: Tensor, mask: Tensor) -> Tensor:
        """``padded [B, K]`` gene indices, ``mask [B, K]`` -> relations ``[B, K, K, 4 G]`` (0 off the mask)."""
        b, k = padded.shape
        if k == 2:
            return self._pairs(padded, mask)
        genes = padded.reshape(-1).to(torch.long)
        pair_mask = (mask.unsqueeze(2) & mask.unsqueeze(1)).to(torch.float32)
        pair_mask = pair_mask * (1 - torch.eye(k, device=padded.device)).unsqueeze(0)
        feats = []
        for t in range(len(self.edge_types)):
            binary, weight = self._dense_rows(t, genes)
            binary, weight = binary.view(b, k, -1), weight.view(b, k, -1)
            idx = padded.to(torch.long).unsqueeze(1).expand(b, k, k)
            edge = binary.gather(2, idx)
            wgt = weight.gather(2, idx)
            shared = torch.bmm(binary, binary.transpose(1, 2))
            deg = binary.sum(-1)
            union = (deg.unsqueeze(2) + deg.unsqueeze(1) - shared).clamp_min(1.0)
            feats += [edge, wgt, torch.log1p(shared), shared / union]
        if self.values.shape[1]:
            v = self.values[genes].view(b, k, -1)  # [B, K, V]
            vi, vj = v.unsqueeze(2).expand(b, k, k, -1), v.unsqueeze(1).expand(b, k, k, -1)
            for j in range(v.shape[-1]):
                a, c = vi[..., j], vj[..., j]
                feats += [torch.minimum(a, c), torch.maximum(a, c), a * c]
        return torch.stack(feats, -1) * pair_mask.unsqueeze(-1)

    def _pairs(self, padded: Tensor, mask: Tensor) -> Tensor:
        """The ``K = 2`` case through :meth:`_pair_graph_features` (no dense adjacency rows)."""
        b = padded.shape[0]
        p = padded.to(torch.long)
        feats = self._pair_graph_features(p[:, 0], p[:, 1])
        if self.values.shape[1]:
            vi, vj = self.values[p[:, 0]], self.values[p[:, 1]]
            for c in range(vi.shape[1]):
                a, d = vi[:, c], vj[:, c]
                feats += [torch.minimum(a, d), torch.maximum(a, d), a * d]
        f = torch.stack(feats, -1) if feats else torch.zeros(b, 0, device=padded.device)
        valid = (mask[:, 0] & mask[:, 1]).to(f.dtype).unsqueeze(-1)
        out = torch.zeros(b, 2, 2, f.shape[-1], device=padded.device, dtype=f.dtype)
        out[:, 0, 1] = f * valid
        out[:, 1, 0] = f * valid
        return out
