"""Graph aggregators (role ``aggregator``): combine the G per-edge-type outputs of one layer.

Every member is built with keyword-only ``dim`` and ``num_graphs`` and maps a list of ``G`` tensors
``[..., dim]`` (same shape) to ``(out [..., dim], weights [..., W] or None)``: ``weights`` are the
member's per-node mixing weights where it has them (``W = G`` for ``cross_attention``, ``W = pairs + 1``
for ``pairwise_interaction``); the model averages them into ``reps['layer_aggregation_weights']``.
Aggregators act per node (and per sample) only: nothing mixes genes or samples.
"""

from __future__ import annotations

import math
from typing import ClassVar, Sequence

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from cellgi.nn.convs.base import dropout_active
from cellgi.nn.mlp import NormName, make_activation, make_norm
from cellgi.registry import NoParams, Params, register

__all__ = [
    "CrossAttentionAggregator",
    "GraphAggregator",
    "MeanAggregator",
    "PairwiseInteractionAggregator",
    "SumAggregator",
]


class GraphAggregator(nn.Module):
    """Base of the ``aggregator`` role (see the module docstring).

    Declared capabilities (checked at registration, see :mod:`cellgi.registry.roles`):
    ``row_independent`` (each output row depends on the same row of the inputs only; the first-layer
    delta needs it) and :meth:`uses_dropout`.
    """

    row_independent: ClassVar[bool] = True

    dim: int
    num_graphs: int

    def __init__(self, *, dim: int, num_graphs: int):
        super().__init__()
        if num_graphs < 1:
            raise ValueError("an aggregator needs at least one graph")
        self.dim, self.num_graphs = dim, num_graphs

    def weight_labels(self, graph_names: Sequence[str]) -> list[str] | None:
        """Names of the entries of ``weights`` (None when the member returns no weights)."""
        return None

    def uses_dropout(self) -> bool:
        """Whether training-mode outputs are random (dropout with ``p > 0``)."""
        return dropout_active(self)

    def _check(self, xs: Sequence[Tensor]) -> None:
        if len(xs) != self.num_graphs:
            raise ValueError(f"{type(self).__name__} built for {self.num_graphs} graphs got {len(xs)}")

    def reset_parameters(self) -> None:
        pass

    def forward(self, xs: Sequence[Tensor]) -> tuple[Tensor, Tensor | None]:  # pragma: no cover
        raise NotImplementedError

    def forward_stacked(self, xs: Tensor) -> tuple[Tensor, Tensor | None]:
        """The same as :meth:`forward` for the ``G`` outputs stacked in one tensor ``[G, ..., dim]`` (the
        model's fused path hands them over so). Members override it where the stack saves work; the
        default unbinds it (views, no copy) and calls :meth:`forward`."""
        return self.forward(list(xs.unbind(0)))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_graphs={self.num_graphs}"


def _sum(xs: Sequence[Tensor]) -> Tensor:
    out = xs[0].clone() if len(xs) > 1 else xs[0]
    for x in xs[1:]:
        out.add_(x)
    return out


@register("aggregator", "sum", summary="sum of the per-graph outputs", params=NoParams)
class SumAggregator(GraphAggregator):
    r"""Sum over edge types: :math:`\mathbf{h}_i = \sum_g \mathbf{h}^{(g)}_i`. Returns no weights.

    Shapes: ``G x [..., dim]`` -> ``[..., dim]``
    """

    def forward(self, xs: Sequence[Tensor]) -> tuple[Tensor, Tensor | None]:
        self._check(xs)
        return _sum(xs), None

    def forward_stacked(self, xs: Tensor) -> tuple[Tensor, Tensor | None]:
        self._check(xs)
        return xs.sum(0), None


@register("aggregator", "mean", summary="mean of the per-graph outputs", params=NoParams)
class MeanAggregator(GraphAggregator):
    r"""Mean over edge types: :math:`\mathbf{h}_i = \frac{1}{G}\sum_g \mathbf{h}^{(g)}_i`. No weights.

    Shapes: ``G x [..., dim]`` -> ``[..., dim]``
    """

    def forward(self, xs: Sequence[Tensor]) -> tuple[Tensor, Tensor | None]:
        self._check(xs)
        return _sum(xs).mul_(1.0 / len(xs)) if len(xs) > 1 else xs[0], None

    def forward_stacked(self, xs: Tensor) -> tuple[Tensor, Tensor | None]:
        self._check(xs)
        return xs.mean(0), None


class CrossAttentionParams(Params):
    num_heads: int = Field(4, ge=1, description="attention heads (dim must be divisible by it)")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout on the attention weights")


@register("aggregator", "cross_attention", params=CrossAttentionParams,
          summary="self-attention across the G graph outputs of each gene, then mean-pooled")
class CrossAttentionAggregator(GraphAggregator):
    r"""Multi-head self-attention across the per-graph states of each gene (Vaswani et al., 2017).

    .. math::
        \mathbf{t}_g = \mathbf{h}^{(g)}_i + \mathbf{e}_g, \qquad
        \mathbf{h}_i = \frac{1}{G}\sum_g \big(\mathbf{t}_g + \mathbf{W}_o\,
        \mathrm{MHA}(\mathbf{t})_g\big)

    with learnable graph embeddings :math:`\mathbf{e}_g`. The returned weights are the attention each
    graph *receives*, averaged over heads and queries (they sum to 1 over graphs).

    Args:
        num_heads: heads (default 4).
        dropout: attention dropout (default 0).
        dim, num_graphs: from the model.

    Shapes: ``G x [..., dim]`` -> ``([..., dim], [..., G])``
    """

    def __init__(self, num_heads: int = 4, dropout: float = 0.0, *, dim: int, num_graphs: int):
        super().__init__(dim=dim, num_graphs=num_graphs)
        if dim % num_heads:
            raise ValueError(f"cross_attention: dim {dim} is not divisible by num_heads={num_heads}")
        self.num_heads, self.dropout = num_heads, dropout
        self.graph_emb = nn.Parameter(torch.empty(num_graphs, dim))
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.graph_emb, std=0.02)
        self.qkv.reset_parameters()
        self.out.reset_parameters()

    def weight_labels(self, graph_names: Sequence[str]) -> list[str] | None:
        return list(graph_names)

    def uses_dropout(self) -> bool:
        return self.dropout > 0 or super().uses_dropout()

    def forward(self, xs: Sequence[Tensor]) -> tuple[Tensor, Tensor | None]:
        self._check(xs)
        return self._attend(torch.stack(list(xs), dim=-2))

    def forward_stacked(self, xs: Tensor) -> tuple[Tensor, Tensor | None]:
        self._check(xs)
        return self._attend(xs.movedim(0, -2))

    def _attend(self, t: Tensor) -> tuple[Tensor, Tensor | None]:
        t = t + self.graph_emb  # [..., G, H]
        lead, g = t.shape[:-2], t.shape[-2]
        d = self.dim // self.num_heads
        q, k, v = self.qkv(t).view(*lead, g, 3, self.num_heads, d).unbind(-3)  # [..., G, heads, d]
        q, k, v = (z.transpose(-2, -3) for z in (q, k, v))  # [..., heads, G, d]
        attn = torch.softmax((q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(d)), dim=-1)  # [..., heads, G, G]
        weights = attn.mean(dim=(-3, -2))  # [..., G]: attention received per graph
        if self.dropout > 0 and self.training:
            attn = F.dropout(attn, p=self.dropout)
        o = (attn @ v).transpose(-2, -3).reshape(*lead, g, self.dim)
        return (t + self.out(o)).mean(-2), weights

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, num_heads={self.num_heads}, dropout={self.dropout}"


class PairwiseInteractionParams(Params):
    pairwise_num_layers: int = Field(2, ge=2, description="linear layers of each pair's MLP (>= 2)")
    pairwise_hidden_dim: int | None = Field(
        None, ge=1, description="bottleneck width of the pair MLPs (default: dim)"
    )
    activation: str = Field("gelu", description="activation inside the pair MLPs")
    include_identity: bool = Field(True, description="add the plain mean of the graph outputs as a candidate")
    norm: NormName = Field("none", description="per-node norm after the weighted sum (layer, rms, none)")


@register("aggregator", "pairwise_interaction", params=PairwiseInteractionParams,
          summary="an MLP per unordered graph pair (and self-pairs), softmax-weighted per gene")
class PairwiseInteractionAggregator(GraphAggregator):
    r"""Pairwise interactions between edge types, scored and softmax-mixed per gene.

    For every unordered pair :math:`(a, b)`, :math:`a \le b` (``P = G(G+1)/2`` pairs, self-pairs
    included) a small MLP reads both graph states:

    .. math::
        \mathbf{u}_{ab} = \sigma\big(\mathbf{W}^{ab}_{1}\mathbf{h}^{(a)} + \mathbf{W}^{ba}_{1}\mathbf{h}^{(b)}
        + \mathbf{b}^{ab}_1\big) \;\to\; \dots \;\to\;
        \mathbf{c}_{ab} = \mathbf{W}^{ab}_{o}\,\mathbf{u}_{ab} + \mathbf{b}^{ab}_o

    Each candidate (the pairs, plus the identity :math:`\frac{1}{G}\sum_g\mathbf{h}^{(g)}` when
    ``include_identity``) is scored by a shared :math:`s(\mathbf{c}) = \mathbf{w}^\top\mathbf{c} + b`, and

    .. math::
        \mathbf{h} = \mathrm{Norm}\Big(\sum_p \mathrm{softmax}_p(s(\mathbf{c}_p))\,\mathbf{c}_p\Big).

    Computed without a ``[M, P, dim]`` stack: the first layer of every pair comes from per-graph
    projections (one batched matmul, pair ``(a, b)`` = ``W^{ab} h_a + W^{ba} h_b``), hidden layers are
    batched matmuls over pairs at the bottleneck width, the output layer is folded into the score
    (:math:`\mathbf{w}^\top\mathbf{W}^{ab}_o`) and into one ``[M, P*D] x [P*D, dim]`` product for the
    weighted sum. For a self-pair both first-layer blocks read the same state (their sum acts as one).

    Args:
        pairwise_num_layers: linear layers per pair MLP (>= 2, default 2).
        pairwise_hidden_dim: bottleneck width ``D`` (default ``dim``).
        activation: hidden activation (default ``gelu``).
        include_identity: add the mean of the graph states as a candidate (default True).
        norm: per-node norm after the sum (default ``none``).
        dim, num_graphs: from the model.

    Shapes: ``G x [..., dim]`` -> ``([..., dim], [..., P (+1)])``; weights are ordered as
    :attr:`pairs` followed by the identity.
    """

    def __init__(
        self,
        pairwise_num_layers: int = 2,
        pairwise_hidden_dim: int | None = None,
        activation: str = "gelu",
        include_identity: bool = True,
        norm: str = "none",
        *,
        dim: int,
        num_graphs: int,
    ):
        super().__init__(dim=dim, num_graphs=num_graphs)
        if pairwise_num_layers < 2:
            raise ValueError("pairwise_interaction: pairwise_num_layers must be >= 2")
        g = num_graphs
        d = pairwise_hidden_dim or dim
        self.num_layers, self.hidden_dim, self.include_identity = pairwise_num_layers, d, include_identity
        self.act_name, self.norm_name = activation, norm
        self.pairs: list[tuple[int, int]] = [(a, b) for a in range(g) for b in range(a, g)]
        p = len(self.pairs)
        # w_in[a, b*D:(b+1)*D, :] is the block graph a contributes to pair {a, b}; ab / ba index the
        # flattened (a, b) grid of per-graph projections for the two halves of each pair
        self.register_buffer("pair_ab", torch.tensor([a * g + b for a, b in self.pairs]), persistent=False)
        self.register_buffer("pair_ba", torch.tensor([b * g + a for a, b in self.pairs]), persistent=False)
        self.w_in = nn.Parameter(torch.empty(g, g * d, dim))
        self.b_in = nn.Parameter(torch.empty(p, d, 1))
        self.w_hidden = nn.Parameter(torch.empty(pairwise_num_layers - 2, p, d, d))
        self.b_hidden = nn.Parameter(torch.empty(pairwise_num_layers - 2, p, d, 1))
        self.w_out = nn.Parameter(torch.empty(p, d, dim))
        self.b_out = nn.Parameter(torch.empty(p, dim))
        self.score = nn.Linear(dim, 1)
        self.act = make_activation(activation)
        self.norm = make_norm(norm, dim)
        self.reset_parameters()

    @property
    def num_candidates(self) -> int:
        return len(self.pairs) + int(self.include_identity)

    def reset_parameters(self) -> None:
        # nn.Linear's default init for fan-ins 2*dim (first layer) and D (later layers)
        for w, b, fan_in in (
            (self.w_in, self.b_in, 2 * self.dim),
            (self.w_hidden, self.b_hidden, self.hidden_dim),
            (self.w_out, self.b_out, self.hidden_dim),
        ):
            bound = 1.0 / math.sqrt(fan_in)
            nn.init.uniform_(w, -bound, bound)
            nn.init.uniform_(b, -bound, bound)
        self.score.reset_parameters()
        if hasattr(self.norm, "reset_parameters"):
            self.norm.reset_parameters()

    def weight_labels(self, graph_names: Sequence[str]) -> list[str] | None:
        labels = [f"{graph_names[a]}*{graph_names[b]}" for a, b in self.pairs]
        return labels + (["identity"] if self.include_identity else [])

    def forward(self, xs: Sequence[Tensor]) -> tuple[Tensor, Tensor | None]:
        self._check(xs)
        return self._mix(torch.stack([t.reshape(-1, self.dim) for t in xs]), xs[0].shape[:-1])

    def forward_stacked(self, xs: Tensor) -> tuple[Tensor, Tensor | None]:
        self._check(xs)
        return self._mix(xs.reshape(xs.shape[0], -1, self.dim), xs.shape[1:-1])

    def _mix(self, x: Tensor, lead: torch.Size) -> tuple[Tensor, Tensor | None]:
        """``x [G, M, H]`` (``M`` = the product of ``lead``) -> outputs and weights shaped ``lead``."""
        g, d, h, p = self.num_graphs, self.hidden_dim, self.dim, len(self.pairs)
        m = x.shape[1]
        # feature-major layout [.., D, M]: every step below is a (batched) matmul or a row gather, no
        # permute copies; u[a*G + b] = graph a's first-layer block for its pair with graph b
        u = torch.bmm(self.w_in, x.transpose(1, 2)).view(g * g, d, m)  # [G*G, D, M]
        z = self.act(u.index_select(0, self.pair_ab) + u.index_select(0, self.pair_ba) + self.b_in)  # [P, D, M]
        for i in range(self.num_layers - 2):
            z = self.act(torch.baddbmm(self.b_hidden[i], self.w_hidden[i].transpose(1, 2), z))
        # candidate c_p = W_out^p.T z_p + b_out^p; its score w.c_p + b without forming c_p
        w_s = self.score.weight.view(h)
        v = (self.w_out @ w_s).unsqueeze(1)  # [P, 1, D]
        logits = torch.baddbmm((self.b_out @ w_s).view(p, 1, 1), v, z).view(p, m) + self.score.bias
        if self.include_identity:
            ident = x.mean(0)  # [M, H]
            logits = torch.cat([logits, self.score(ident).view(1, m)], dim=0)
        alpha = torch.softmax(logits, dim=0)  # [P(+1), M]
        a_pairs = alpha[:p]
        zw = (z * a_pairs.unsqueeze(1)).view(p * d, m)  # [P*D, M]
        out = torch.addmm(a_pairs.t() @ self.b_out, zw.t(), self.w_out.view(p * d, h))  # [M, H]
        if self.include_identity:
            out = out + alpha[p].unsqueeze(-1) * ident
        out = self.norm(out)
        return out.view(*lead, h), alpha.t().reshape(*lead, alpha.shape[0])

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, pairs={len(self.pairs)}, num_layers={self.num_layers}, "
            f"hidden_dim={self.hidden_dim}, include_identity={self.include_identity}, norm={self.norm_name}"
        )
