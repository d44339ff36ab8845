"""GATv2 with edge masks on the attention logits (role ``conv``, name ``masked_gatv2``)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn
from torch_geometric.utils import scatter, softmax

from cellgi.nn.convs.base import MaskedConv
from cellgi.nn.mlp import masked_fill_min
from cellgi.nn.operator import GraphOperator
from cellgi.registry import Params, register

__all__ = ["MaskedGATv2", "MaskedGATv2Params"]


class MaskedGATv2Params(Params):
    heads: int = Field(4, ge=1, description="attention heads")
    concat: bool = Field(
        True, description="concatenate heads (each head out_dim/heads wide) instead of averaging them"
    )
    negative_slope: float = Field(0.2, ge=0, description="LeakyReLU slope inside the attention score")
    add_self_loops: bool = Field(True, description="every gene also attends to itself")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout on the attention coefficients")
    share_weights: bool = Field(False, description="one linear map for sources and targets")


@register("conv", "masked_gatv2", params=MaskedGATv2Params,
          summary="GATv2 attention; masked edges get zero weight (logits masked before the softmax)")
class MaskedGATv2(MaskedConv):
    r"""The GATv2 operator of Brody et al., "How Attentive are Graph Attention Networks?" (ICLR 2022),
    with edge masks applied to the attention logits.

    .. math::
        e_{ij} = \mathbf{a}^{\top}\,\mathrm{LeakyReLU}\big(\mathbf{W}_s \mathbf{x}_j +
        \mathbf{W}_t \mathbf{x}_i\big), \qquad
        \alpha_{ij} = \frac{m_{ij} \exp(e_{ij})}{\sum_{k \in \mathcal{N}(i)} m_{ik} \exp(e_{ik})}, \qquad
        \mathbf{x}^{\prime}_i = \sum_{j \in \mathcal{N}(i) \cup \{i\}} \alpha_{ij} \mathbf{W}_s \mathbf{x}_j

    per head, where :math:`m_{ij} \in \{0, 1\}` is the edge mask (batched: ``keep[j] & keep[i]``). A
    masked edge gets exactly zero weight, as if it were absent; a gene with no kept in-edge aggregates
    zero (no NaN). The batched path computes logits ``[E, B, heads]`` over the shared ``edge_index``.
    Its memory grows with ``E * B * out_dim`` (attention is per edge and per sample): prefer
    ``masked_gin`` for large batches.

    Args:
        heads: number of heads (default 4).
        concat: concatenate heads (default True; ``out_dim`` must be divisible by ``heads``), else mean.
        negative_slope: LeakyReLU slope (default 0.2).
        add_self_loops: add a self-loop per gene (default True).
        dropout: attention dropout (default 0).
        share_weights: :math:`\mathbf{W}_s = \mathbf{W}_t` (default False).
        in_dim: input size (keyword, from the model).
        out_dim: output size (keyword, from the model).

    Shapes:
        - forward: ``x [N, in_dim]``, ``edge_index [2, E]``, ``edge_mask [E]`` -> ``[N, out_dim]``
        - forward_batched: ``x [N, B, in_dim]``, ``keep [N, B]`` -> ``[N, B, out_dim]``
    """

    def __init__(
        self,
        heads: int = 4,
        concat: bool = True,
        negative_slope: float = 0.2,
        add_self_loops: bool = True,
        dropout: float = 0.0,
        share_weights: bool = False,
        *,
        in_dim: int,
        out_dim: int,
    ):
        super().__init__()
        if concat and out_dim % heads:
            raise ValueError(f"masked_gatv2: out_dim {out_dim} is not divisible by heads={heads} (concat=True)")
        self.in_dim, self.out_dim, self.heads, self.concat = in_dim, out_dim, heads, concat
        self.head_dim = out_dim // heads if concat else out_dim
        self.negative_slope, self.add_self_loops = negative_slope, add_self_loops
        self.dropout, self.share_weights = dropout, share_weights
        self.lin_s = nn.Linear(in_dim, heads * self.head_dim)
        self.lin_t = self.lin_s if share_weights else nn.Linear(in_dim, heads * self.head_dim)
        self.att = nn.Parameter(torch.empty(heads, self.head_dim))
        self.bias = nn.Parameter(torch.empty(out_dim))
        self.reset_parameters()

    def uses_dropout(self) -> bool:
        return self.dropout > 0 or super().uses_dropout()

    def reset_parameters(self) -> None:
        self.lin_s.reset_parameters()
        if not self.share_weights:
            self.lin_t.reset_parameters()
        bound = math.sqrt(6.0 / (self.heads + self.head_dim))  # glorot, as PyG
        nn.init.uniform_(self.att, -bound, bound)
        nn.init.zeros_(self.bias)

    def _attend(self, x: Tensor, src: Tensor, dst: Tensor, mask: Tensor | None) -> Tensor:
        """x ``[N, *S, in]``; src/dst ``[E]``; mask ``[E, *S]`` or None -> ``[N, *S, out_dim]``."""
        n = x.shape[0]
        lead = x.shape[:-1]
        xs = self.lin_s(x).view(*lead, self.heads, self.head_dim)
        xt = xs if self.share_weights else self.lin_t(x).view(*lead, self.heads, self.head_dim)
        x_j = xs.index_select(0, src)  # [E, *S, heads, C]
        e = F.leaky_relu(x_j + xt.index_select(0, dst), self.negative_slope)
        logits = (e * self.att).sum(-1)  # [E, *S, heads]
        if mask is not None:
            m = mask.unsqueeze(-1)
            logits = masked_fill_min(logits, m)
        alpha = softmax(logits, dst, num_nodes=n, dim=0)
        if mask is not None:
            alpha = alpha * m.to(alpha.dtype)  # exact zeros; a gene with only masked in-edges sums to 0
        if self.dropout > 0 and self.training:
            alpha = F.dropout(alpha, p=self.dropout, training=True)
        out = scatter(x_j * alpha.unsqueeze(-1), dst, dim=0, dim_size=n, reduce="sum")
        out = out.flatten(-2) if self.concat else out.mean(-2)
        return out + self.bias

    def forward(self, x: Tensor, edge_index: Tensor, edge_mask: Tensor | None = None) -> Tensor:
        src, dst = edge_index[0], edge_index[1]
        if self.add_self_loops:
            not_loop = src != dst
            src, dst = src[not_loop], dst[not_loop]
            loops = torch.arange(x.shape[0], device=x.device)
            src, dst = torch.cat([src, loops]), torch.cat([dst, loops])
            if edge_mask is not None:
                edge_mask = torch.cat([edge_mask[not_loop], edge_mask.new_ones(x.shape[0])])
        return self._attend(x, src, dst, edge_mask)

    def forward_batched(self, x: Tensor, adj: GraphOperator, keep: Tensor) -> Tensor:
        ei = adj.edge_index_with_self_loops() if self.add_self_loops else adj.edge_index
        src, dst = ei[0], ei[1]
        mask = keep.index_select(0, src) & keep.index_select(0, dst)  # [E, B]
        return self._attend(x, src, dst, mask)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_dim}, {self.out_dim}, heads={self.heads}, concat={self.concat}, "
            f"add_self_loops={self.add_self_loops}, dropout={self.dropout})"
        )
