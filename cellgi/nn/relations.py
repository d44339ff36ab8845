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
"""

from __future__ import annotations

from typing import Sequence

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

    def forward(self, padded: Tensor, mask: Tensor) -> Tensor:
        """``padded [B, K]`` gene indices, ``mask [B, K]`` -> relations ``[B, K, K, 4 G]`` (0 off the mask)."""
        b, k = padded.shape
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
