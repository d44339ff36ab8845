"""GIN over a shared adjacency with per-sample node masks (role ``conv``, name ``masked_gin``)."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor, nn
from torch_geometric.utils import scatter

from cellgi.nn.convs.base import MaskedConv, masked_input
from cellgi.nn.mlp import MLP, NormName, fused_mlp, mlps_fusable
from cellgi.nn.operator import GraphOperator, RemovedEdges, StackedOperator, spmm
from cellgi.registry import Params, register

__all__ = ["MaskedGIN", "MaskedGINParams"]


class MaskedGINParams(Params):
    num_mlp_layers: int = Field(2, ge=1, description="linear layers in the GIN update MLP")
    mlp_hidden_dim: int | None = Field(None, ge=1, description="hidden size of the MLP (default: out_dim)")
    train_eps: bool = Field(False, description="learn the self-weight epsilon")
    eps: float = Field(0.0, description="initial epsilon (self-weight is 1 + eps)")
    activation: str = Field("gelu", description="activation inside the MLP (PyG resolver name)")
    mlp_norm: NormName = Field("none", description="per-node norm inside the MLP (layer, rms, none)")


@register("conv", "masked_gin", params=MaskedGINParams,
          summary="GIN (sum aggregation + MLP); batched as one sparse x dense product over [N, B*H]")
class MaskedGIN(MaskedConv):
    r"""The graph isomorphism operator of Xu et al., "How Powerful are Graph Neural Networks?" (ICLR 2019),
    with per-sample node masks over one shared adjacency.

    .. math::
        \mathbf{x}^{\prime}_i = \mathrm{MLP}\Big((1 + \epsilon)\,\mathbf{x}_i +
        \sum_{j \in \mathcal{N}(i)} \mathbf{x}_j\Big)

    In the batched form, sample :math:`b` removes the edges of its deleted genes. For a kept gene
    :math:`i` that is the same as zeroing the deleted sources, so for all samples at once

    .. math::
        \mathbf{H}^{\prime} = \mathrm{MLP}\big((1 + \epsilon)\,\mathbf{H} +
        \mathbf{A}\,(\mathbf{H} \odot \mathbf{K})\big)

    with :math:`\mathbf{A}[i, j] = 1` for an edge :math:`j \to i`, :math:`\mathbf{H}` the states
    ``[N, B*H]`` and :math:`\mathbf{K}` the keep mask broadcast over features: ONE sparse x dense
    product, no per-sample edges.

    Args:
        num_mlp_layers: linear layers of the MLP (default 2).
        mlp_hidden_dim: MLP hidden size (default ``out_dim``).
        train_eps: learn :math:`\epsilon` (default False).
        eps: initial :math:`\epsilon` (default 0).
        activation: MLP activation (default ``gelu``).
        mlp_norm: per-node norm after each hidden MLP layer (default ``none``).
        in_dim: input size (keyword, from the model).
        out_dim: output size (keyword, from the model).

    Shapes:
        - forward: ``x [N, in_dim]``, ``edge_index [2, E]``, ``edge_mask [E]`` -> ``[N, out_dim]``
        - forward_batched: ``x [N, B, in_dim]``, ``keep [N, B]`` -> ``[N, B, out_dim]``
        - forward_shared: ``x [N, in_dim]``, ``removed`` with ``R`` pairs -> ``([N, out_dim], [R, out_dim])``
        - forward_fused (class method, G convs at once): ``x [N, B, in_dim]`` -> ``[G, N*B, out_dim]``
    """

    supports_shared = True
    supports_fused = True
    supports_masked_input = True

    def __init__(
        self,
        num_mlp_layers: int = 2,
        mlp_hidden_dim: int | None = None,
        train_eps: bool = False,
        eps: float = 0.0,
        activation: str = "gelu",
        mlp_norm: str = "none",
        *,
        in_dim: int,
        out_dim: int,
    ):
        super().__init__()
        self.in_dim, self.out_dim = in_dim, out_dim
        self.initial_eps = eps
        self.train_eps = train_eps
        if train_eps:
            self.eps = nn.Parameter(torch.tensor(float(eps)))
        else:
            self.register_buffer("eps", torch.tensor(float(eps)))
        self.mlp = MLP(in_dim, mlp_hidden_dim or out_dim, out_dim, num_mlp_layers, mlp_norm, activation)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.mlp.reset_parameters()
        self.eps.data.fill_(self.initial_eps)

    def forward(self, x: Tensor, edge_index: Tensor, edge_mask: Tensor | None = None) -> Tensor:
        x_j = x.index_select(0, edge_index[0])
        if edge_mask is not None:
            x_j = x_j * edge_mask.to(x.dtype).unsqueeze(-1)
        agg = scatter(x_j, edge_index[1], dim=0, dim_size=x.shape[0], reduce="sum")
        return self.mlp((1 + self.eps) * x + agg)

    def forward_batched(self, x: Tensor, adj: GraphOperator, keep: Tensor) -> Tensor:
        return self.forward_masked(x, masked_input(x, keep), adj)

    def forward_masked(self, x: Tensor, src: Tensor, adj: GraphOperator) -> Tensor:
        """:meth:`forward_batched` given ``src = masked_input(x, keep)`` (made once per layer)."""
        n, b, h = x.shape
        agg = spmm(adj.adj, adj.adj_t, src).view(n, b, h)
        if self.train_eps or self.initial_eps != 0.0:
            return self.mlp(agg + (1 + self.eps) * x)
        return self.mlp(agg.add_(x))  # eps fixed at 0: skip a multiply and a temporary

    def forward_shared(self, x: Tensor, adj: GraphOperator, removed: RemovedEdges) -> tuple[Tensor, Tensor]:
        """Wildtype output and the outputs at ``removed``'s pairs, for an input shared by every column:
        an affected gene's sum is the wildtype sum minus its removed in-neighbours (the sum is linear), so
        the MLP runs on ``N + R`` rows instead of ``N * C``."""
        agg = spmm(adj.adj, adj.adj_t, x)  # [N, H]
        lost = x.index_select(0, removed.src) * removed.weight.to(x.dtype).unsqueeze(-1)
        lost = scatter(lost, removed.slot, dim=0, dim_size=removed.num_rows, reduce="sum")
        x_rows = x.index_select(0, removed.rows)
        inp = torch.cat([agg, agg.index_select(0, removed.rows) - lost]) + (1 + self.eps) * torch.cat([x, x_rows])
        out = self.mlp(inp)
        return out[: x.shape[0]], out[x.shape[0]:]

    @classmethod
    def can_fuse(cls, convs: list["MaskedGIN"]) -> bool:
        """Whether :meth:`forward_fused` can run these convs (one per edge type) together."""
        first = convs[0]
        return (
            all(type(c) is cls and (c.in_dim, c.out_dim) == (first.in_dim, first.out_dim) for c in convs)
            and mlps_fusable([c.mlp for c in convs])
        )

    @classmethod
    def forward_fused(cls, convs: list["MaskedGIN"], x: Tensor, adj: StackedOperator, keep: Tensor) -> Tensor:
        """:meth:`forward_batched` of ``G`` convs over their ``G`` edge types at once: one sparse product
        against the stacked adjacency (``[G*N, N]``), the masked input made once, and the ``G`` MLPs as
        batched products over the edge-type axis. ``x [N, B, H]`` -> ``[G, N*B, out_dim]``, equal to
        ``torch.stack([c.forward_batched(x, op_g, keep) for ...])`` up to float rounding."""
        n, b, h = x.shape
        g = len(convs)
        agg = adj.aggregate(masked_input(x, keep)).view(g, n * b, h)
        xf = x.reshape(1, n * b, h)
        if any(c.train_eps or c.initial_eps != 0.0 for c in convs):
            eps = torch.stack([c.eps for c in convs]).to(x.dtype).view(g, 1, 1)
            inp = agg + (1 + eps) * xf
        else:
            inp = agg.add_(xf)  # eps fixed at 0 for all
        return fused_mlp([c.mlp for c in convs], inp)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_dim}, {self.out_dim}, eps={self.initial_eps}, "
            f"train_eps={self.train_eps}, mlp={self.mlp})"
        )
