"""The shared wildtype cell graph: an ordered gene list and one edge set per edge type.

Every sample of a data set shares this one graph; a sample is only the set of deleted genes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import torch
from torch import Tensor

__all__ = ["CellGraph", "EdgeType"]


@dataclass
class EdgeType:
    """One gene graph.

    Attributes:
        name: edge type name (``physical``, ``regulatory``, ``string_coexpression``, ...).
        directed: False means the graph is undirected and ``edge_index`` holds both directions.
        edge_index: ``[2, E]`` long tensor, row 0 = source, row 1 = target; messages flow source -> target.
        edge_weight: optional ``[E]`` float weights, aligned with ``edge_index``.
    """

    name: str
    directed: bool
    edge_index: Tensor
    edge_weight: Tensor | None = None

    def __post_init__(self) -> None:
        if self.edge_index.dim() != 2 or self.edge_index.shape[0] != 2:
            raise ValueError(f"edge type {self.name!r}: edge_index must be [2, E], got {tuple(self.edge_index.shape)}")
        self.edge_index = self.edge_index.to(torch.long)
        if self.edge_weight is not None and self.edge_weight.shape != (self.edge_index.shape[1],):
            raise ValueError(f"edge type {self.name!r}: edge_weight must be [E]")

    @property
    def num_edges(self) -> int:
        return int(self.edge_index.shape[1])


@dataclass
class CellGraph:
    """Genes (graph nodes, in order) and the edge types over them.

    Undirected edge types must already hold both directions (readers and :meth:`from_edges` do this).
    """

    genes: list[str]
    edge_types: dict[str, EdgeType] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(set(self.genes)) != len(self.genes):
            seen: set[str] = set()
            dup = [g for g in self.genes if g in seen or seen.add(g)]  # type: ignore[func-returns-value]
            raise ValueError(f"gene list has duplicates, e.g. {dup[:5]}")
        self.gene_index: dict[str, int] = {g: i for i, g in enumerate(self.genes)}
        n = len(self.genes)
        for et in self.edge_types.values():
            if et.num_edges and (int(et.edge_index.min()) < 0 or int(et.edge_index.max()) >= n):
                raise ValueError(
                    f"edge type {et.name!r}: node ids out of range [0, {n}) "
                    f"(min {int(et.edge_index.min())}, max {int(et.edge_index.max())})"
                )

    @property
    def num_nodes(self) -> int:
        return len(self.genes)

    @property
    def edge_type_names(self) -> list[str]:
        return list(self.edge_types)

    def edge_index(self, name: str) -> Tensor:
        return self.edge_types[name].edge_index

    def in_adjacency(self, name: str) -> Tensor:
        """Sparse CSR ``[N, N]`` with ``A[dst, src] = 1``: ``A @ x`` sums each gene's in-neighbours."""
        ei = self.edge_types[name].edge_index
        n = self.num_nodes
        vals = torch.ones(ei.shape[1], dtype=torch.float32)
        return torch.sparse_coo_tensor(ei.flip(0), vals, (n, n)).coalesce().to_sparse_csr()

    @classmethod
    def from_edges(
        cls,
        genes: list[str],
        edges: Iterable[tuple[str, Tensor, bool]],
    ) -> "CellGraph":
        """Build from ``(name, edge_index [2, E], directed)``; undirected ones get both directions, deduplicated."""
        types: dict[str, EdgeType] = {}
        for name, ei, directed in edges:
            ei = ei.to(torch.long)
            if not directed:
                ei = torch.cat([ei, ei.flip(0)], dim=1)
            ei = torch.unique(ei, dim=1) if ei.numel() else ei.reshape(2, 0)
            types[name] = EdgeType(name, directed, ei)
        return cls(list(genes), types)

    def to_hetero_data(self):  # -> torch_geometric.data.HeteroData
        """The graph as PyG ``HeteroData`` with node type ``gene`` and one edge type per graph."""
        from torch_geometric.data import HeteroData

        data = HeteroData()
        data["gene"].num_nodes = self.num_nodes
        for name, et in self.edge_types.items():
            data["gene", name, "gene"].edge_index = et.edge_index
            if et.edge_weight is not None:
                data["gene", name, "gene"].edge_weight = et.edge_weight
        return data

    def __repr__(self) -> str:
        parts = ", ".join(f"{n}={et.num_edges}{'' if et.directed else ' (undirected)'}" for n, et in self.edge_types.items())
        return f"CellGraph(num_genes={self.num_nodes}, {parts})"
