"""Hand-made, order-invariant features of gene sets (:class:`SetFeaturizer`, :func:`set_features`), what the
feature trees (:mod:`cellgi.baselines.trees`) and the propagation trees are fitted on.

Per gene set: the per-gene inputs of ``data.features`` (single-mutant phenotypes, fitness, ...) and log1p
degrees per graph, aggregated over the set by mean/min/max; for every graph the mean and max over the set's
pairs of adjacency, edge weight, log1p shared neighbours and Jaccard index
(:class:`~cellgi.nn.relations.PairRelations`); shared GO-slim terms (when ``data.features`` has a ``go_slim``
source); the set size. Sums run in sorted order, so a set's features have the same bits whatever order its
genes come in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
from torch import Tensor

from cellgi.data.batch import dataset_sets, iter_batches
from cellgi.data.cellgraph import CellGraph
from cellgi.nn.relations import PairRelations

if TYPE_CHECKING:
    from cellgi.data.build import DataBundle

__all__ = ["SetFeaturizer", "set_features"]


def _degree_block(graph: CellGraph) -> tuple[np.ndarray, list[str]]:
    n = graph.num_nodes
    cols, names = [], []
    for t in graph.edge_type_names:
        ei = graph.edge_types[t].edge_index.to(torch.long)
        deg = torch.bincount(torch.cat([ei[0], ei[1]]), minlength=n).double()
        cols.append(torch.log1p(deg).numpy())
        names.append(f"log1p_degree.{t}")
    return np.stack(cols, 1), names


def _ordered_sum(v: Tensor) -> Tensor:
    """Sum over dim 1 in sorted order: the same bits whatever order the set's genes (or pairs) come in, so
    that no tree threshold sees a float-rounding difference between (a, b, c) and (c, b, a)."""
    return v.sort(dim=1).values.sum(1)


class SetFeaturizer:
    """The hand-made features of :func:`set_features` for any gene sets, from a graph and the per-gene
    inputs alone (what a run folder stores), so that a fitted :class:`~cellgi.baselines.trees.FeatureBaseline` scores sets of a
    file as well as the run's own splits.

    Args:
        graph: the :class:`~cellgi.data.cellgraph.CellGraph`.
        gene_features: ``[N, F]`` per-gene inputs (``DataBundle.gene_features``; None or empty: none).
        feature_names: their column names (``go.*`` columns are used as GO-slim terms).
    """

    def __init__(self, graph: CellGraph, gene_features: Tensor | None = None, feature_names: Sequence[str] = ()):
        deg, deg_names = _degree_block(graph)
        gene_cols, gene_names = [deg], deg_names
        self.go: Tensor | None = None
        names = list(feature_names or [])
        if gene_features is not None and gene_features.numel():
            f = gene_features.detach().cpu().numpy().astype(np.float64)
            is_go = np.array([n.startswith("go.") and n != "go.missing" for n in names], dtype=bool)
            if is_go.any():
                self.go = torch.from_numpy(f[:, is_go]).to(torch.float32)
            keep = ~is_go
            gene_cols.append(f[:, keep])
            gene_names += [n for n, k in zip(names, keep) if k]
        self.per_gene = torch.from_numpy(np.concatenate(gene_cols, 1)).to(torch.float32)  # [N, Fg]
        self.relations = PairRelations(graph, graph.edge_type_names)
        rel = self.relations.feature_names
        cols = ([f"mean.{n}" for n in gene_names] + [f"min.{n}" for n in gene_names]
                + [f"max.{n}" for n in gene_names] + [f"pair_mean.{n}" for n in rel] + [f"pair_max.{n}" for n in rel])
        if self.go is not None:
            cols += ["pair_mean.shared_go", "pair_max.shared_go", "pair_mean.jaccard_go"]
        cols.append("set_size")
        self.names: list[str] = cols

    @torch.no_grad()
    def __call__(self, padded: Tensor, mask: Tensor, *, batch_size: int = 4096) -> np.ndarray:
        """Features ``[S, D]`` of the sets ``padded [S, K]`` (gene indices; ``mask [S, K]`` marks the real ones)."""
        padded, mask = padded.to(torch.long).cpu(), mask.to(torch.bool).cpu()
        out = []
        for p, m in zip(iter_batches(padded, batch_size), iter_batches(mask, batch_size)):
            k = p.shape[1]
            mf = m.unsqueeze(-1).to(torch.float32)
            x = self.per_gene[p]  # [b, k, Fg]
            cnt = mf.sum(1).clamp_min(1.0)
            mean = _ordered_sum(x * mf) / cnt
            big = torch.finfo(torch.float32).max
            mn = torch.where(m.unsqueeze(-1), x, torch.full_like(x, big)).amin(1)
            mx = torch.where(m.unsqueeze(-1), x, torch.full_like(x, -big)).amax(1)
            iu, ju = torch.triu_indices(k, k, 1)
            pm = (m[:, iu] & m[:, ju]).to(torch.float32)  # [b, P]
            pcnt = pm.sum(1, keepdim=True).clamp_min(1.0)
            r = self.relations(p, m)[:, iu, ju]  # [b, P, R]
            pair = [_ordered_sum(r * pm.unsqueeze(-1)) / pcnt, (r * pm.unsqueeze(-1)).amax(1)]
            parts = [mean, mn, mx, *pair]
            if self.go is not None:
                g = self.go[p]  # [b, k, T]
                shared = (g[:, iu] * g[:, ju]).sum(-1)  # [b, P]
                union = (g[:, iu] + g[:, ju]).clamp_max(1).sum(-1).clamp_min(1.0)
                jac = shared / union
                parts += [_ordered_sum((shared * pm).unsqueeze(-1)) / pcnt, (shared * pm).amax(1, keepdim=True),
                          _ordered_sum((jac * pm).unsqueeze(-1)) / pcnt]
            parts.append(m.sum(1, keepdim=True).to(torch.float32))
            out.append(torch.cat(parts, 1).numpy())
        return np.concatenate(out, 0) if out else np.zeros((0, len(self.names)), dtype=np.float32)


def set_features(
    bundle: DataBundle, indices: Tensor | None = None, *, batch_size: int = 4096
) -> tuple[np.ndarray, list[str]]:
    """Hand-made, order-invariant features ``[S, D]`` of the gene sets of ``bundle.dataset`` (see the module
    docstring) and their names (:class:`SetFeaturizer` on the bundle's graph and per-gene inputs)."""
    idx = None if indices is None else torch.as_tensor(indices, dtype=torch.long)
    feat = SetFeaturizer(bundle.graph, getattr(bundle, "gene_features", None), getattr(bundle, "feature_names", ()))
    return feat(*dataset_sets(bundle.dataset, idx), batch_size=batch_size), list(feat.names)
