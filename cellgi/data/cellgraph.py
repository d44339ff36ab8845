"""The shared wildtype cell graph: an ordered gene list and one edge set per edge type.

Every sample of a data set shares this one graph; a sample is only the set of deleted genes.

Conventions:

- ``edge_index[0]`` is the source, ``edge_index[1]`` the target; messages flow source -> target.
- Undirected edge types are stored in both directions (``(a, b)`` and ``(b, a)``), once each.
- Self-loops are dropped by default (``self_loops="drop"``); ``"keep"`` keeps one ``(a, a)`` entry.
- Repeated edges are merged (``merge_max`` or ``merge_mean`` of their weights) or refused (``error``);
  how many were merged is returned in :class:`EdgeStats` so readers can report it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Literal

import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:  # imported by to_hetero_data when used: PyG takes seconds to import
    from torch_geometric.data import HeteroData

__all__ = ["CellGraph", "DuplicateEdgeError", "EdgeStats", "EdgeType", "normalize_edges"]

SelfLoops = Literal["drop", "keep"]
Duplicates = Literal["merge_max", "merge_mean", "error"]


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
        if self.edge_weight is not None:
            if self.edge_weight.shape != (self.edge_index.shape[1],):
                raise ValueError(f"edge type {self.name!r}: edge_weight must be [E]")
            self.edge_weight = self.edge_weight.to(torch.float32)

    @property
    def num_edges(self) -> int:
        """Stored (directed) edges; an undirected type counts each gene pair twice."""
        return int(self.edge_index.shape[1])

    @property
    def num_pairs(self) -> int:
        """Distinct gene pairs (= ``num_edges`` for directed types, about half of it for undirected)."""
        if self.directed:
            return self.num_edges
        ei = self.edge_index
        return int((ei[0] < ei[1]).sum()) + int((ei[0] == ei[1]).sum())


class DuplicateEdgeError(ValueError):
    """Repeated edges under the ``error`` policy; ``row`` is the first repeating input row."""

    def __init__(self, message: str, row: int, count: int):
        super().__init__(message)
        self.row, self.count = row, count


@dataclass
class EdgeStats:
    """What :func:`normalize_edges` did to the raw rows of one edge type."""

    rows: int = 0
    self_loops_dropped: int = 0
    #: rows repeating an earlier row in the same orientation
    duplicates_merged: int = 0
    #: undirected pairs listed in both orientations (``a b`` and ``b a``), merged into one pair
    reverse_merged: int = 0
    #: row numbers (into the input arrays) of the first few repeated rows, for messages
    duplicate_rows: list[int] = field(default_factory=list)


def normalize_edges(
    src: Tensor | np.ndarray,
    dst: Tensor | np.ndarray,
    num_nodes: int,
    *,
    directed: bool,
    weight: Tensor | np.ndarray | None = None,
    self_loops: SelfLoops = "drop",
    duplicates: Duplicates = "merge_max",
    name: str = "edges",
) -> tuple[Tensor, Tensor | None, EdgeStats]:
    """Deduplicate, apply the self-loop policy and (for undirected graphs) add the reverse direction.

    Vectorised (numpy); runs in well under a second for millions of rows.

    Args:
        src, dst: ``[R]`` node indices of the raw rows.
        num_nodes: N; indices must be in ``[0, N)``.
        directed: for undirected graphs ``(a, b)`` and ``(b, a)`` are the same pair.
        weight: optional ``[R]`` weights; merged per the ``duplicates`` policy.
        self_loops: ``drop`` (default) or ``keep``.
        duplicates: ``merge_max``, ``merge_mean`` or ``error`` (raises :class:`ValueError`
            naming the first row that repeats an earlier one in the same orientation; an undirected
            pair listed as ``a b`` and ``b a`` is the usual symmetric listing and is merged).
        name: edge type name, for messages.

    Returns:
        ``(edge_index [2, E], edge_weight [E] or None, stats)``, sorted by (source, target).
    """
    s = np.asarray(src, dtype=np.int64).reshape(-1)
    d = np.asarray(dst, dtype=np.int64).reshape(-1)
    if s.shape != d.shape:
        raise ValueError(f"{name}: src and dst differ in length ({s.size} vs {d.size})")
    w = None if weight is None else np.asarray(weight, dtype=np.float64).reshape(-1)
    if w is not None and w.shape != s.shape:
        raise ValueError(f"{name}: weight length {w.size} != {s.size} rows")
    stats = EdgeStats(rows=int(s.size))
    if s.size and (min(s.min(), d.min()) < 0 or max(s.max(), d.max()) >= num_nodes):
        raise ValueError(f"{name}: node index out of range [0, {num_nodes})")
    rows = np.arange(s.size)
    if self_loops == "drop":
        keep = s != d
        stats.self_loops_dropped = int((~keep).sum())
        s, d, rows = s[keep], d[keep], rows[keep]
        w = None if w is None else w[keep]
    okey = s * num_nodes + d  # oriented key: exact repeats
    ouniq, ofirst = np.unique(okey, return_index=True)
    stats.duplicates_merged = int(okey.size - ouniq.size)
    if directed:
        key = okey
    else:
        key = np.minimum(s, d) * num_nodes + np.maximum(s, d)
    uniq, inverse = np.unique(key, return_inverse=True)
    stats.reverse_merged = int(ouniq.size - uniq.size)
    if stats.duplicates_merged:
        is_first = np.zeros(okey.size, dtype=bool)
        is_first[ofirst] = True
        stats.duplicate_rows = rows[~is_first][:5].tolist()
        if duplicates == "error":
            raise DuplicateEdgeError(
                f"{name}: {stats.duplicates_merged} repeated edge(s), first at input row "
                f"{stats.duplicate_rows[0]} (duplicates policy is 'error')",
                stats.duplicate_rows[0],
                stats.duplicates_merged,
            )
    ua, ub = uniq // num_nodes, uniq % num_nodes
    uw = None
    if w is not None:
        if duplicates == "merge_mean":
            sums = np.bincount(inverse, weights=w, minlength=uniq.size)
            cnt = np.bincount(inverse, minlength=uniq.size)
            uw = sums / cnt
        else:
            uw = np.full(uniq.size, -np.inf)
            np.maximum.at(uw, inverse, w)
    if not directed:
        loop = ua == ub
        ra, rb = ub[~loop], ua[~loop]
        ua, ub = np.concatenate([ua, ra]), np.concatenate([ub, rb])
        if uw is not None:
            uw = np.concatenate([uw, uw[~loop]])
        order = np.argsort(ua * num_nodes + ub, kind="stable")
        ua, ub = ua[order], ub[order]
        uw = None if uw is None else uw[order]
    ei = torch.from_numpy(np.stack([ua, ub]).astype(np.int64))
    ew = None if uw is None else torch.from_numpy(uw.astype(np.float32))
    return ei, ew, stats


@dataclass
class CellGraph:
    """Genes (graph nodes, in order) and the edge types over them.

    Undirected edge types must already hold both directions (readers and :meth:`from_edges` do this).
    """

    genes: list[str]
    edge_types: dict[str, EdgeType] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len({g.upper() for g in self.genes}) != len(self.genes):
            # case variants ('YAL001C', 'yal001c') count as one gene: two nodes would split its edges
            seen: dict[str, str] = {}
            dup = []
            for g in self.genes:
                if g.upper() in seen:
                    dup.append(f"{seen[g.upper()]!r}/{g!r}")
                seen.setdefault(g.upper(), g)
            raise ValueError(f"gene list has duplicates (names compared ignoring case), e.g. {', '.join(dup[:5])}")
        self.gene_index: dict[str, int] = {g: i for i, g in enumerate(self.genes)}
        n = len(self.genes)
        for key, et in self.edge_types.items():
            if key != et.name:
                raise ValueError(f"edge type stored under {key!r} is named {et.name!r}")
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
        """``[2, E]`` edges of one type (both directions for undirected types)."""
        return self._get(name).edge_index

    def edge_weight(self, name: str) -> Tensor | None:
        """``[E]`` weights of one type, or None when unweighted."""
        return self._get(name).edge_weight

    def _get(self, name: str) -> EdgeType:
        try:
            return self.edge_types[name]
        except KeyError:
            raise KeyError(f"no edge type {name!r}; this graph has {self.edge_type_names}") from None

    def degree(self, name: str, *, direction: Literal["in", "out"] = "in") -> Tensor:
        """``[N]`` in- or out-degree per gene (for undirected types both are the neighbour count)."""
        ei = self._get(name).edge_index
        row = ei[1] if direction == "in" else ei[0]
        return torch.bincount(row, minlength=self.num_nodes)

    def index_of(self, genes: Iterable[str]) -> Tensor:
        """Node indices of gene names; a :class:`KeyError` lists the unknown ones."""
        genes = list(genes)
        missing = [g for g in genes if g not in self.gene_index]
        if missing:
            raise KeyError(f"{len(missing)} gene(s) not in the graph, e.g. {missing[:5]}")
        return torch.tensor([self.gene_index[g] for g in genes], dtype=torch.long)

    @classmethod
    def from_edges(
        cls,
        genes: list[str],
        edges: Iterable[tuple[Any, ...]],
        *,
        self_loops: SelfLoops = "drop",
        duplicates: Duplicates = "merge_max",
    ) -> "CellGraph":
        """Build from ``(name, edge_index [2, E], directed)`` or ``(name, edge_index, directed, weight)``.

        Undirected types get both directions; repeated edges are merged, self-loops dropped by default.
        """
        n = len(genes)
        types: dict[str, EdgeType] = {}
        for item in edges:
            if len(item) == 3:
                name, ei, directed = item
                w = None
            elif len(item) == 4:
                name, ei, directed, w = item
            else:
                raise ValueError("edges must be (name, edge_index, directed[, weight]) tuples")
            if name in types:
                raise ValueError(f"edge type {name!r} given twice")
            ei = torch.as_tensor(ei).to(torch.long).reshape(2, -1)
            out_ei, out_w, _ = normalize_edges(
                ei[0].numpy(),
                ei[1].numpy(),
                n,
                directed=bool(directed),
                weight=None if w is None else torch.as_tensor(w).numpy(),
                self_loops=self_loops,
                duplicates=duplicates,
                name=name,
            )
            types[name] = EdgeType(name, bool(directed), out_ei, out_w)
        return cls(list(genes), types)

    def to_hetero_data(self) -> HeteroData:
        """The graph as PyG ``HeteroData`` with node type ``gene`` and one edge type per graph.

        Each edge store carries ``edge_index``, ``edge_weight`` (when weighted) and ``directed``.
        """
        from torch_geometric.data import HeteroData  # imported here for startup time: PyG takes seconds

        data = HeteroData()
        data["gene"].num_nodes = self.num_nodes
        data["gene"].node_names = list(self.genes)
        for name, et in self.edge_types.items():
            store = data["gene", name, "gene"]
            store.edge_index = et.edge_index
            store.directed = et.directed
            if et.edge_weight is not None:
                store.edge_weight = et.edge_weight
        return data

    @classmethod
    def from_hetero_data(cls, data: HeteroData, genes: list[str] | None = None) -> "CellGraph":
        """Inverse of :meth:`to_hetero_data`. ``genes`` defaults to the stored ``node_names``.

        Edge stores without a ``directed`` attribute are taken as directed (stored as they are).
        """
        if genes is None:
            genes = list(getattr(data["gene"], "node_names", None) or [])
            if not genes:
                genes = [f"gene{i}" for i in range(int(data["gene"].num_nodes))]
        types: dict[str, EdgeType] = {}
        for (s, rel, d) in data.edge_types:
            if s != "gene" or d != "gene":
                raise ValueError(f"only gene-gene edge types are supported, got {(s, rel, d)}")
            store = data[s, rel, d]
            directed = bool(getattr(store, "directed", True))
            w = getattr(store, "edge_weight", None)
            types[rel] = EdgeType(rel, directed, store.edge_index, w)
        return cls(list(genes), types)

    def state_dict(self) -> dict[str, Any]:
        """Plain tensors, strings and bools (safe for ``torch.load(weights_only=True)``)."""
        return {
            "genes": list(self.genes),
            "edge_types": {
                name: {
                    "directed": et.directed,
                    "edge_index": et.edge_index,
                    "edge_weight": et.edge_weight,
                }
                for name, et in self.edge_types.items()
            },
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> "CellGraph":
        """Inverse of :meth:`state_dict`."""
        types = {
            name: EdgeType(name, bool(v["directed"]), v["edge_index"], v.get("edge_weight"))
            for name, v in state["edge_types"].items()
        }
        return cls(list(state["genes"]), types)

    def __repr__(self) -> str:
        parts = ", ".join(f"{n}={et.num_edges}{'' if et.directed else ' (undirected)'}" for n, et in self.edge_types.items())
        return f"CellGraph(num_genes={self.num_nodes}, {parts})"
