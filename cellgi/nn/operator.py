"""The shared adjacency of one edge type, held by the model and moved with it.

A :class:`GraphOperator` is built once from a :class:`~cellgi.data.cellgraph.CellGraph` edge type and
holds everything a conv needs to run message passing for *all* samples of a batch at once:

- ``edge_index`` ``[2, E]`` (row 0 = source, row 1 = target; undirected types hold both directions),
- ``adj``: sparse CSR ``[N, N]`` in-adjacency with ``adj[dst, src] = 1`` so that ``adj @ x`` sums
  each gene's in-neighbours, and its transpose ``adj_t`` (used by the backward pass),
- optional ``edge_weight`` ``[E]``.

A :class:`StackedOperator` puts the G operators of a model one above the other (``[G*N, N]``), so that the
per-edge-type convs of a layer aggregate with one sparse product (``cellgi.nn.convs.fused``).

For a first layer whose input is the same in every column (the preprocessed embedding), only the targets of
the deleted genes' out-edges see a different input than in the wildtype; :meth:`GraphOperator.removed_in_edges`
lists those edges as a :class:`RemovedEdges` (see ``LazyDango`` and ``MaskedConv.forward_shared``).

All tensors are *non-persistent* buffers: ``model.to(device)`` moves them, ``state_dict()`` leaves them
out (they are rebuilt from the graph, so checkpoints do not grow with the graph).
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass

import torch
from torch import Tensor, nn

__all__ = ["GraphOperator", "RemovedEdges", "StackedOperator", "spmm"]


def _csr(rows: Tensor, cols: Tensor, values: Tensor, n: int) -> Tensor:
    return _csr_rect(rows, cols, values, n, n)


class _SpMM(torch.autograd.Function):
    """``adj @ x`` for a constant sparse ``adj``; the backward uses the precomputed CSR transpose."""

    @staticmethod
    def forward(ctx, adj: Tensor, adj_t: Tensor, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.adj_t = adj_t
        return _product(adj, x)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        return None, None, _product(ctx.adj_t, grad.contiguous())


#: widest dense operand (columns) that CPU products send to PyTorch's CSR sum kernel rather than MKL
CPU_REDUCE_MAX_COLUMNS = 1024


def _product(adj: Tensor, x: Tensor) -> Tensor:
    """``adj @ x``. On CPU, for operands up to :data:`CPU_REDUCE_MAX_COLUMNS` wide (and always for bf16/fp16,
    which MKL lacks), through PyTorch's own CSR sum kernel (``torch.sparse.mm(..., reduce="sum")``):
    at yeast scale, one thread, the nine edge types' forward and backward products took 502 ms against
    MKL's 587 ms at B=8 (576 columns), but 3,449 against 3,159 ms at B=32 (2,112 columns)."""
    if adj.device.type == "cpu" and adj.layout == torch.sparse_csr and (
        x.shape[-1] <= CPU_REDUCE_MAX_COLUMNS or x.dtype in (torch.bfloat16, torch.float16)
    ):
        return torch.sparse.mm(adj, x, reduce="sum")
    return adj @ x


#: (device type, dtype) pairs whose sparse CSR x dense product is known not to exist; filled on first use,
#: then those products run in fp32 (CPU's CSR sum kernel, which bf16/fp16 products use, has both)
_NO_NATIVE_SPMM: set[tuple[str, torch.dtype]] = set()


def spmm(adj: Tensor, adj_t: Tensor, x: Tensor) -> Tensor:
    """Sparse ``[N, N]`` times dense ``[N, F]``, differentiable in ``x`` only.

    ``adj_t`` must be ``adj`` transposed (both CSR); it makes the backward one more CSR product instead of
    a format conversion. The product runs in ``x``'s dtype (autocast does not touch it; the sparse values
    are cast when they differ), except where the device has no sparse kernel for that dtype: there it runs
    in fp32 and the result is cast back.
    """
    key = (x.device.type, x.dtype)
    with torch.autocast(x.device.type, enabled=False):
        if key not in _NO_NATIVE_SPMM:
            try:
                return _spmm(adj, adj_t, x)
            except (NotImplementedError, RuntimeError) as exc:
                if x.dtype not in (torch.bfloat16, torch.float16) or "not implemented" not in str(exc):
                    raise
                _NO_NATIVE_SPMM.add(key)
        return _spmm(adj, adj_t, x.float()).to(x.dtype)


def _spmm(adj: Tensor, adj_t: Tensor, x: Tensor) -> Tensor:
    if adj.dtype != x.dtype:
        adj, adj_t = adj.to(x.dtype), adj_t.to(x.dtype)
    if not x.requires_grad:
        return _product(adj, x)
    return _SpMM.apply(adj, adj_t, x)


@dataclass(frozen=True)
class RemovedEdges:
    """The in-edges a batch's deletions remove from one edge type, grouped by the (gene, column) they enter.

    ``C`` is the number of columns (samples, plus the wildtype). Sample ``c`` removes every edge out of a
    gene it deletes; a gene ``m`` in column ``c`` then misses those sources in its aggregation. Only such
    ``(m, c)`` pairs differ from the wildtype in a first layer whose input is the same in every column.

    Attributes:
        keys: ``[R]`` sorted unique ``m * C + c`` of the affected (gene, column) pairs, which is also the
            pair's row in a ``[N, C, H]`` tensor viewed as ``[N * C, H]``.
        rows: ``[R]`` the affected gene ``m`` of each key.
        src: ``[E']`` the source (a deleted gene) of each removed edge.
        slot: ``[E']`` the index into ``keys`` of each removed edge's (target, column).
        weight: ``[E']`` the adjacency value of each removed edge.
    """

    keys: Tensor
    rows: Tensor
    src: Tensor
    slot: Tensor
    weight: Tensor

    @property
    def num_rows(self) -> int:
        return int(self.keys.shape[0])


class GraphOperator(nn.Module):
    """Shared adjacency of one edge type (see the module docstring).

    Args:
        name: edge type name.
        edge_index: ``[2, E]`` source/target gene indices.
        num_nodes: number of genes ``N``.
        directed: whether the edge type is directed (informational; undirected types hold both directions).
        edge_weight: optional ``[E]`` weights (kept for convs that use them; the CSR holds ones).
    """

    edge_index: Tensor
    adj: Tensor
    adj_t: Tensor

    def __init__(
        self,
        name: str,
        edge_index: Tensor,
        num_nodes: int,
        directed: bool = True,
        edge_weight: Tensor | None = None,
    ):
        super().__init__()
        if edge_index.dim() != 2 or edge_index.shape[0] != 2:
            raise ValueError(f"edge type {name!r}: edge_index must be [2, E], got {tuple(edge_index.shape)}")
        self.name, self.num_nodes, self.directed = name, int(num_nodes), bool(directed)
        ei = edge_index.to(torch.long)
        # sort by (target, source): CSR order, contiguous segments per target for scatter/softmax
        order = torch.argsort(ei[1] * max(self.num_nodes, 1) + ei[0])
        ei = ei[:, order].contiguous()
        src, dst = ei[0], ei[1]
        ones = torch.ones(ei.shape[1], dtype=torch.float32)
        self.register_buffer("edge_index", ei, persistent=False)
        self.register_buffer("adj", _csr(dst, src, ones, self.num_nodes), persistent=False)
        self.register_buffer("adj_t", _csr(src, dst, ones, self.num_nodes), persistent=False)
        if edge_weight is not None:
            self.register_buffer("edge_weight", edge_weight.to(torch.float32)[order], persistent=False)
        else:
            self.edge_weight = None

    def __deepcopy__(self, memo: dict) -> "GraphOperator":
        """A deep copy (``copy.deepcopy`` of a model: weight averaging, ...). Sparse CSR tensors have no
        storage to deep-copy, so the CSR buffers are cloned; everything else is copied as usual."""
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        for key, value in self.__dict__.items():
            if key == "_buffers":
                value = {
                    n: b.clone() if b is not None and b.layout == torch.sparse_csr else copy.deepcopy(b, memo)
                    for n, b in value.items()
                }
            else:
                value = copy.deepcopy(value, memo)
            new.__dict__[key] = value
        return new

    @classmethod
    def from_graph(cls, graph, name: str) -> "GraphOperator":  # graph: cellgi.data.cellgraph.CellGraph
        """The operator of edge type ``name`` of a ``CellGraph``."""
        et = graph.edge_types[name]
        return cls(name, et.edge_index, graph.num_nodes, et.directed, et.edge_weight)

    @property
    def num_edges(self) -> int:
        return int(self.edge_index.shape[1])

    def edge_index_with_self_loops(self) -> Tensor:
        """``edge_index`` without its self-loops, plus one self-loop per gene (cached on the device)."""
        cached = getattr(self, "_edge_index_sl", None)
        if cached is None or cached.device != self.edge_index.device:
            ei = self.edge_index
            ei = ei[:, ei[0] != ei[1]]
            loops = torch.arange(self.num_nodes, device=ei.device).unsqueeze(0).expand(2, -1)
            cached = torch.cat([ei, loops], dim=1).contiguous()
            self.register_buffer("_edge_index_sl", cached, persistent=False)
        return cached

    def removed_in_edges(self, genes: Tensor, cols: Tensor, num_cols: int) -> RemovedEdges:
        """The edges out of ``genes[i]`` as removed in column ``cols[i]`` (``[D]`` each), for ``num_cols``
        columns, read from the CSR transpose (one host sync for the output size)."""
        crow, dst_all, val = self.adj_t.crow_indices(), self.adj_t.col_indices(), self.adj_t.values()
        genes, cols = genes.to(crow.device, torch.long), cols.to(crow.device, torch.long)
        start = crow.index_select(0, genes)
        count = crow.index_select(0, genes + 1) - start
        owner = torch.repeat_interleave(torch.arange(genes.numel(), device=crow.device), count)
        first = torch.cumsum(count, 0) - count  # position of each gene's first edge in the flat list
        pos = start.index_select(0, owner) + torch.arange(owner.numel(), device=crow.device) - first.index_select(
            0, owner
        )
        dst = dst_all.index_select(0, pos)
        keys, slot = torch.unique(dst * num_cols + cols.index_select(0, owner), return_inverse=True)
        return RemovedEdges(keys, keys // num_cols, genes.index_select(0, owner), slot, val.index_select(0, pos))

    def extra_repr(self) -> str:
        kind = "directed" if self.directed else "undirected"
        return f"{self.name!r}, num_nodes={self.num_nodes}, num_edges={self.num_edges}, {kind}"


class StackedOperator:
    """The in-adjacencies of ``G`` edge types stacked: ``adj [G*N, N]`` (row ``g*N + i`` = gene ``i``'s
    in-edges of type ``g``), CSR.

    :meth:`aggregate` with ``x [N, F]`` gives every type's neighbour sums at once as ``[G*N, F]``; its
    backward sums the types' gradients. Not a module: the model keeps it in a cache keyed by device and
    rebuilds it from its :class:`GraphOperator` s (nothing in the state dict).
    """

    def __init__(self, operators: list[GraphOperator], stacked_backward: bool | None = None):
        if not operators:
            raise ValueError("StackedOperator needs at least one operator")
        n = operators[0].num_nodes
        if any(op.num_nodes != n for op in operators):
            raise ValueError("StackedOperator: every edge type must have the same number of genes")
        self.num_nodes, self.num_types = n, len(operators)
        self.device = operators[0].edge_index.device
        g = len(operators)
        # rows of adj are (type, target): the types' CSRs one after the other
        crows = [op.adj.crow_indices() for op in operators]
        nnz = torch.tensor([0] + [int(c[-1]) for c in crows[:-1]], device=self.device).cumsum(0)
        crow = torch.cat([crows[0]] + [c[1:] + nnz[i] for i, c in enumerate(crows) if i > 0])
        col = torch.cat([op.adj.col_indices() for op in operators])
        val = torch.cat([op.adj.values() for op in operators])  # a repeated edge is one entry of value 2
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support is in beta.*")
            self.adj = torch.sparse_csr_tensor(crow, col, val, (g * n, n), check_invariants=False)
        # the backward: on CPU one product per type (each type's gradient block, [N, F], stays in cache;
        # one [N, G*N] product gathering from all G blocks measured 1.4x slower at yeast scale), on GPUs
        # one product over the stacked transpose (fewer kernels)
        self.adj_t_parts = [op.adj_t for op in operators]
        self.adj_t: Tensor | None = None
        if stacked_backward if stacked_backward is not None else self.device.type != "cpu":
            # rows are sources, columns (type, target); coalescing sums repeated edges as in adj
            src = torch.cat([op.edge_index[0] for op in operators])
            dst = torch.cat([op.edge_index[1] + i * n for i, op in enumerate(operators)])
            ones = torch.ones(src.numel(), dtype=torch.float32, device=self.device)
            self.adj_t = _csr_rect(src, dst, ones, n, g * n)

    @property
    def num_edges(self) -> int:
        return int(self.adj.values().numel())

    def aggregate(self, x: Tensor) -> Tensor:
        """``[G*N, F]``: every type's in-neighbour sums of ``x [N, F]``, differentiable in ``x`` (dtype
        handling as :func:`spmm`)."""
        with torch.autocast(x.device.type, enabled=False):
            if (x.device.type, x.dtype) in _NO_NATIVE_SPMM:
                return _StackedSpMM.apply(self, x.float()).to(x.dtype)
            return _StackedSpMM.apply(self, x)

    def transpose_product(self, grad: Tensor) -> Tensor:
        """``adj^T @ grad`` for ``grad [G*N, F]`` -> ``[N, F]``."""
        if self.adj_t is not None:
            return _product(_as(self.adj_t, grad.dtype), grad)
        n = self.num_nodes
        out = _product(_as(self.adj_t_parts[0], grad.dtype), grad[:n])
        for i in range(1, self.num_types):
            out.add_(_product(_as(self.adj_t_parts[i], grad.dtype), grad[i * n : (i + 1) * n]))
        return out


def _as(adj: Tensor, dtype: torch.dtype) -> Tensor:
    return adj if adj.dtype == dtype else adj.to(dtype)


class _StackedSpMM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, op: StackedOperator, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.op = op
        return _product(_as(op.adj, x.dtype), x)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        return None, ctx.op.transpose_product(grad.contiguous())


def _csr_rect(rows: Tensor, cols: Tensor, values: Tensor, n_rows: int, n_cols: int) -> Tensor:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support is in beta.*")
        coo = torch.sparse_coo_tensor(
            torch.stack([rows, cols]), values, (n_rows, n_cols), check_invariants=False
        ).coalesce()
        return coo.to_sparse_csr()
