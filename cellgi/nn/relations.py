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

The features are symmetric in ``(i, j)``; the diagonal is zero.

How they are computed: ``edge`` and ``weight`` are looked up in each type's sorted edge keys
(``searchsorted``, no dense rows); ``shared`` reads a per-type table of common-neighbour counts, the sparse
product ``A A^T`` of the symmetrised adjacency stored dense as ``int16`` (``N^2 * 2`` bytes per edge type:
87 MB at yeast scale), built on the first call and kept; the degrees come from the adjacency. A pair then
costs a few gathers, whatever ``N`` is, so millions of arbitrary pairs are scored in big vectorised
chunks. Where the tables would exceed :data:`SHARED_TABLE_BYTES` (graphs far larger than yeast), the
common neighbours are counted from each sample's dense adjacency rows ``[B, K, N]`` instead
(:meth:`PairRelations.forward_dense`, the original way, also the reference the tests compare with). Both
give the same values bitwise: the counts are exact integers in float32 either way.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn

__all__ = ["PairRelations", "RELATION_FEATURES", "SHARED_TABLE_BYTES"]

#: largest total size of the common-neighbour tables (all edge types) kept in memory; above it the
#: counts are taken from dense adjacency rows per batch (slower, no table)
SHARED_TABLE_BYTES = 1 << 30

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
            self.register_buffer(f"key_{t}", uniq, persistent=False)  # sorted row * N + col
            self.register_buffer(f"deg_{t}", (crow[1:] - crow[:-1]).to(torch.float32), persistent=False)
        #: per edge type, the ``[N, N]`` int16 common-neighbour counts (built on first use; not saved)
        self._shared: list[Tensor] | None = None

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

    @property
    def uses_shared_tables(self) -> bool:
        """Whether :meth:`forward` reads the common-neighbour tables (see the module docs)."""
        n = self.num_genes
        return n * n * 2 * len(self.edge_types) <= SHARED_TABLE_BYTES and n < 32768

    def shared_tables(self) -> list[Tensor]:
        """Per edge type, the ``[N, N]`` int16 counts of common neighbours (``A A^T`` of the symmetrised
        adjacency, diagonal included), built once (scipy sparse product, in row blocks) and kept."""
        if self._shared is not None and self._shared[0].device == self.values.device:
            return self._shared
        tables = []
        for t in range(len(self.edge_types)):
            crow, col = getattr(self, f"crow_{t}").cpu().numpy(), getattr(self, f"col_{t}").cpu().numpy()
            tables.append(_shared_table(self.num_genes, crow, col).to(self.values.device))
        self._shared = tables
        return tables

    def _edge_lookup(self, t: int, gi: Tensor, gj: Tensor) -> tuple[Tensor, Tensor]:
        """``(edge, weight)`` float32 of the ordered pairs ``(gi, gj)`` in edge type ``t`` (0 where absent)."""
        key, w = getattr(self, f"key_{t}"), getattr(self, f"w_{t}")
        q = gi * self.num_genes + gj
        if key.numel() == 0:
            z = torch.zeros(q.shape, device=q.device)
            return z, z
        pos = torch.searchsorted(key, q).clamp_max(key.numel() - 1)
        found = key[pos] == q
        return found.to(torch.float32), torch.where(found, w[pos], torch.zeros((), device=q.device))

    def forward(self, padded: Tensor, mask: Tensor) -> Tensor:
        """``padded [B, K]`` gene indices, ``mask [B, K]`` -> relations ``[B, K, K, 4 G]`` (0 off the mask)."""
        if not self.uses_shared_tables:
            return self.forward_dense(padded, mask)
        b, k = padded.shape
        p = padded.to(torch.long)
        # each unordered pair once (the features are symmetric), then mirrored into [B, K, K, F]
        iu, ju = torch.triu_indices(k, k, 1, device=p.device)
        gi, gj = p[:, iu], p[:, ju]  # [B, P]
        pm = (mask[:, iu] & mask[:, ju]).to(torch.float32)
        tables = self.shared_tables()
        feats = []
        for t in range(len(self.edge_types)):
            edge, wgt = self._edge_lookup(t, gi, gj)
            shared = tables[t][gi, gj].to(torch.float32)
            deg = getattr(self, f"deg_{t}")
            union = (deg[gi] + deg[gj] - shared).clamp_min(1.0)
            feats += [edge, wgt, torch.log1p(shared), shared / union]
        if self.values.shape[1]:
            vi, vj = self.values[gi], self.values[gj]  # [B, P, V]
            for j in range(vi.shape[-1]):
                a, c = vi[..., j], vj[..., j]
                feats += [torch.minimum(a, c), torch.maximum(a, c), a * c]
        f = torch.stack(feats, -1) * pm.unsqueeze(-1)  # [B, P, F]
        out = f.new_zeros(b, k, k, f.shape[-1])
        out[:, iu, ju] = f
        out[:, ju, iu] = f
        return out

    def forward_dense(self, padded: Tensor, mask: Tensor) -> Tensor:
        """:meth:`forward` from each sample's dense adjacency rows ``[B, K, N]`` (no table; memory and time
        linear in ``B * K * N``): the way for graphs too large for the tables, and the tests' reference."""
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


#: tables already built in this process, by graph content (the members of a seed ensemble share a graph)
_TABLES: dict[tuple[int, str], Tensor] = {}


def _shared_table(n: int, crow: "np.ndarray", col: "np.ndarray") -> Tensor:
    """``[n, n]`` int16 common-neighbour counts of the binary adjacency in CSR form ``(crow, col)``."""

    key = (n, hashlib.sha1(crow.tobytes() + col.tobytes()).hexdigest())
    if key in _TABLES:
        return _TABLES[key]
    a = sp.csr_matrix((np.ones(col.size, dtype=np.float32), col, crow), shape=(n, n))
    at = a.T.tocsr()
    out = np.empty((n, n), dtype=np.int16)
    for lo in range(0, n, 1024):  # counts are exact integers in float32 (< 2^24), then < 2^15 (n < 32768)
        out[lo : lo + 1024] = (a[lo : lo + 1024] @ at).toarray()
    if len(_TABLES) >= 16:
        _TABLES.pop(next(iter(_TABLES)))
    _TABLES[key] = torch.from_numpy(out)
    return _TABLES[key]
