"""Two graph aggregators (role ``aggregator``): ``gated_sum`` and ``topk_attention``.

A cellgi layer runs one conv per gene graph (physical, regulatory, STRING channels, ...) and an
aggregator merges the ``G`` per-graph outputs of every gene into one state. Both aggregators here take
the structural context ``dim`` (``H``) and ``num_graphs`` (``G``) from the model assembly and return
``(out [..., H], weights [..., G])`` where ``weights`` says how much each graph contributed to each
gene's state (logged as ``layer_aggregation_weights``).
"""

from __future__ import annotations

import math
from typing import Literal, Sequence

import torch
from pydantic import Field
from torch import Tensor, nn

from cellgi.nn.aggregators import GraphAggregator
from cellgi.registry import Params, register

__all__ = [
    "GatedSumAggregator",
    "GatedSumParams",
    "TopKAttentionAggregator",
    "TopKAttentionParams",
]


def _check_shapes(xs: Sequence[Tensor], dim: int, who: str) -> None:
    """Every graph output must have the same shape ``[..., dim]``."""
    shape = xs[0].shape
    if shape[-1] != dim:
        raise ValueError(f"{who}: expected feature size {dim}, got shape {tuple(shape)}")
    for g, x in enumerate(xs[1:], start=1):
        if x.shape != shape:
            raise ValueError(f"{who}: graph output {g} has shape {tuple(x.shape)}, graph 0 {tuple(shape)}")


class GatedSumParams(Params):
    """Parameters of the ``gated_sum`` aggregator."""

    normalize: bool = Field(
        False,
        description="divide by the sum of the gates: a gated mean instead of a gated sum",
    )
    gate_bias: float = Field(
        0.0,
        description="initial bias of every gate logit; 0 opens each gate halfway (sigmoid(0) = 0.5)",
    )
    shared_gate: bool = Field(
        False,
        description="one gate vector shared by all graphs instead of one per graph",
    )


@register(
    "aggregator",
    "gated_sum",
    summary="sum of the graph outputs, each scaled by a per-gene sigmoid gate computed from it",
    params=GatedSumParams,
)
class GatedSumAggregator(GraphAggregator):
    r"""Gated sum over graphs: every gene decides, per graph, how much of that graph's message to keep.

    The sigmoid gates of the graph-level readout of Li et al. 2016 (*Gated Graph Sequence Neural
    Networks*), applied across edge types instead of across nodes: unlike a softmax, the gates are
    independent, so a gene can take all graphs in full or none of them.

    .. math::
        a_{i,g} = \sigma(\mathbf{w}_g^\top \mathbf{x}_{i,g} + b_g), \qquad
        \mathbf{h}_i = \sum_{g=1}^{G} a_{i,g}\, \mathbf{x}_{i,g}
        \quad\Bigl(\text{or } \mathbf{h}_i / \textstyle\sum_g a_{i,g} \text{ with } normalize\Bigr)

    Args:
        normalize: divide by the sum of the gates (a gated mean). Default ``False``.
        gate_bias: initial gate-logit bias. Default ``0.0`` (every gate starts near 0.5).
        shared_gate: one ``w, b`` for all graphs instead of one per graph. Default ``False``.
        dim: feature size ``H`` (structural, passed by the model).
        num_graphs: number of graphs ``G`` (structural, passed by the model).

    Shapes:
        - input: ``xs``, a list of ``G`` tensors ``[..., H]`` (e.g. ``[N, B, H]``)
        - output: ``out [..., H]``, ``weights [..., G]`` (the gates, normalised when ``normalize``)
    """

    def __init__(
        self,
        normalize: bool = False,
        gate_bias: float = 0.0,
        shared_gate: bool = False,
        *,
        dim: int,
        num_graphs: int,
    ):
        super().__init__(dim=dim, num_graphs=num_graphs)
        self.normalize, self.gate_bias, self.shared_gate = normalize, float(gate_bias), shared_gate
        rows = 1 if shared_gate else num_graphs
        self.gate_weight = nn.Parameter(torch.empty(rows, dim))
        self.gate_bias_param = nn.Parameter(torch.empty(rows))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Gate weights uniform in ``+-1/sqrt(H)`` (as ``nn.Linear``), biases ``gate_bias``."""
        bound = 1.0 / math.sqrt(self.dim)
        nn.init.uniform_(self.gate_weight, -bound, bound)
        nn.init.constant_(self.gate_bias_param, self.gate_bias)

    def weight_labels(self, graph_names: Sequence[str]) -> list[str] | None:
        """One gate per graph."""
        return list(graph_names)

    def forward(self, xs: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """Gated sum of ``xs`` (``G`` tensors ``[..., H]``) and the gates ``[..., G]``."""
        self._check(xs)
        _check_shapes(xs, self.dim, "gated_sum")
        gates = [
            torch.sigmoid(x @ self.gate_weight[0 if self.shared_gate else g]
                          + self.gate_bias_param[0 if self.shared_gate else g])  # [...]
            for g, x in enumerate(xs)
        ]
        out = gates[0].unsqueeze(-1) * xs[0]
        for gate, x in zip(gates[1:], xs[1:]):
            out = out + gate.unsqueeze(-1) * x
        weights = torch.stack(gates, dim=-1)  # [..., G]
        if self.normalize:
            total = weights.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(weights.dtype).tiny)
            out = out / total
            weights = weights / total
        return out, weights

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, normalize={self.normalize}, shared_gate={self.shared_gate}"


class TopKAttentionParams(Params):
    """Parameters of the ``topk_attention`` aggregator."""

    k: int = Field(
        2,
        ge=1,
        description="graphs kept per gene (its k highest-scoring ones); at most the number of graphs",
    )
    temperature: float = Field(
        1.0,
        gt=0.0,
        description="softmax temperature of the graph scores (lower = sharper)",
    )
    graph_bias: bool = Field(
        True,
        description="learn a per-graph score offset (a prior preference for each graph)",
    )
    normalize: Literal["kept", "all"] = Field(
        "kept",
        description="kept: softmax over the kept graphs only (weights sum to 1); all: softmax over every "
        "graph, then the dropped ones zeroed (weights sum to <= 1, as Switch Transformer's top-1 "
        "routing). With k = 1, 'kept' gives weight 1 and the scorer no gradient: use 'all'",
    )


@register(
    "aggregator",
    "topk_attention",
    summary="per gene, keep the k highest-scoring graphs and softmax-average them (sparse attention)",
    params=TopKAttentionParams,
)
class TopKAttentionAggregator(GraphAggregator):
    r"""Sparse attention over graphs: each gene attends to its ``k`` best-scoring graphs only.

    Additive attention scores (Bahdanau et al. 2015) with top-k sparsification (as in the sparse
    attention of Zhao et al. 2019, *Explicit Sparse Transformer*): graphs outside a gene's top ``k``
    get exactly zero weight, so a noisy edge type cannot leak into a gene that does not pick it.

    .. math::
        s_{i,g} = \mathbf{q}^\top \tanh(\mathbf{W} \mathbf{x}_{i,g} + \mathbf{c}) / \sqrt{H} + \beta_g,
        \qquad
        \alpha_{i,g} = \frac{\mathbb{1}[g \in \mathrm{top}_k(s_i)]\, e^{s_{i,g}/T}}
                            {\sum_{g' \in S_i} e^{s_{i,g'}/T}},
        \qquad
        \mathbf{h}_i = \sum_g \alpha_{i,g}\, \mathbf{x}_{i,g}

    with :math:`S_i = \mathrm{top}_k(s_i)` (``normalize: kept``) or all graphs (``normalize: all``).
    Gradients reach the scores of the kept graphs; the selection itself is piecewise constant, so with
    ``k = 1`` only ``normalize: all`` lets the scorer learn (through the kept graph's weight).

    Args:
        k: graphs kept per gene, ``1 <= k <= num_graphs``. Default ``2``.
        temperature: softmax temperature ``T``. Default ``1.0``.
        graph_bias: learn the per-graph offsets ``beta_g``. Default ``True``.
        normalize: ``"kept"`` (default) or ``"all"``, the set the softmax runs over.
        dim: feature size ``H`` (structural, passed by the model).
        num_graphs: number of graphs ``G`` (structural, passed by the model).

    Shapes:
        - input: ``xs``, a list of ``G`` tensors ``[..., H]``
        - output: ``out [..., H]``, ``weights [..., G]`` (``G - k`` zeros per gene; the rest sums to 1
          with ``normalize: kept``)
    """

    def __init__(
        self,
        k: int = 2,
        temperature: float = 1.0,
        graph_bias: bool = True,
        normalize: Literal["kept", "all"] = "kept",
        *,
        dim: int,
        num_graphs: int,
    ):
        super().__init__(dim=dim, num_graphs=num_graphs)
        if not 1 <= k <= num_graphs:
            raise ValueError(
                f"topk_attention: k={k} must lie in [1, num_graphs={num_graphs}] "
                f"(the model has {num_graphs} graph(s)); lower k in the spec"
            )
        if temperature <= 0:
            raise ValueError(f"topk_attention: temperature must be > 0, got {temperature}")
        if normalize not in ("kept", "all"):
            raise ValueError(f"topk_attention: normalize must be 'kept' or 'all', got {normalize!r}")
        self.normalize = normalize
        self.k, self.temperature, self.graph_bias = k, float(temperature), graph_bias
        self.proj = nn.Linear(dim, dim)
        self.query = nn.Parameter(torch.empty(dim))
        self.bias = nn.Parameter(torch.zeros(num_graphs)) if graph_bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Projection as ``nn.Linear``; query normal with std ``1/sqrt(H)``; graph offsets zero."""
        self.proj.reset_parameters()
        nn.init.normal_(self.query, std=1.0 / math.sqrt(self.dim))
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def scores(self, xs: Sequence[Tensor]) -> Tensor:
        """Unmasked attention scores ``[..., G]`` (before top-k and temperature)."""
        scale = 1.0 / math.sqrt(self.dim)
        s = torch.stack([torch.tanh(self.proj(x)) @ self.query for x in xs], dim=-1) * scale
        if self.bias is not None:
            s = s + self.bias
        return s

    def weight_labels(self, graph_names: Sequence[str]) -> list[str] | None:
        """One attention weight per graph (zero outside each gene's top k)."""
        return list(graph_names)

    def forward(self, xs: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """Attention-weighted sum of ``xs`` over each gene's top-k graphs, and the weights ``[..., G]``."""
        self._check(xs)
        _check_shapes(xs, self.dim, "topk_attention")
        s = self.scores(xs) / self.temperature
        if self.k < self.num_graphs:
            top = s.topk(self.k, dim=-1).indices
            kept = torch.zeros_like(s, dtype=torch.bool).scatter_(-1, top, True)
            if self.normalize == "kept":
                weights = torch.softmax(s.masked_fill(~kept, float("-inf")), dim=-1)
            else:
                weights = torch.softmax(s, dim=-1).masked_fill(~kept, 0.0)
        else:
            weights = torch.softmax(s, dim=-1)
        out = weights[..., 0:1] * xs[0]
        for g in range(1, self.num_graphs):
            out = out + weights[..., g : g + 1] * xs[g]
        return out, weights

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, k={self.k}, temperature={self.temperature}, normalize={self.normalize}"
        )
