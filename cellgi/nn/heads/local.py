"""Local heads (role ``local_predictor``): predict from the deleted genes' own states and relations.

A member reads ``x.states [B, K, dim]`` (the deleted genes' wildtype states, padded to ``K``) and
``x.mask [B, K]`` of a :class:`~cellgi.nn.heads.base.HeadInput`; one declaring ``uses_relations`` also
reads ``x.relations [B, K, K, R]`` and ``x.inputs [B, K, dim]``.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal, Sequence

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn

from cellgi.nn.heads.base import Head, HeadInput, LocalPredictor
from cellgi.nn.mlp import MLP, masked_fill_min
from cellgi.registry import Params, register

__all__ = [
    "PAIR_READS",
    "HypergraphAttention",
    "HypergraphAttentionParams",
    "PairRelationHead",
    "PairRelationParams",
]


class HypergraphAttentionParams(Params):
    num_layers: int = Field(2, ge=1, description="self-attention layers over the deleted genes")
    num_heads: int = Field(4, ge=1, description="attention heads (dim must be divisible by it)")
    static_num_layers: int = Field(1, ge=1, description="layers of the per-gene static-embedding MLP")
    ff_mult: int = Field(2, ge=1, description="width of each layer's feed-forward block, in multiples of dim")
    activation: str = Field("gelu", description="activation of the MLPs")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout on attention weights and feed-forward")
    rezero: bool = Field(True, description="ReZero residuals (scales start at 0) instead of plain residuals")
    exclude_self: bool = Field(True, description="a gene attends to the other deleted genes only (Hyper-SAGNN)")


class _SetAttention(nn.Module):
    """One multi-head self-attention + feed-forward block over a padded set, with (ReZero) residuals."""

    def __init__(self, dim: int, heads: int, ff_mult: int, activation: str, dropout: float, rezero: bool):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.ff = MLP(dim, ff_mult * dim, dim, 2, activation=activation, dropout=dropout)
        init = 0.0 if rezero else 1.0
        self.alpha_attn = nn.Parameter(torch.tensor(init), requires_grad=rezero)
        self.alpha_ff = nn.Parameter(torch.tensor(init), requires_grad=rezero)
        self.rezero = rezero

    def reset_parameters(self) -> None:
        self.qkv.reset_parameters()
        self.out.reset_parameters()
        self.ff.reset_parameters()
        init = 0.0 if self.rezero else 1.0
        self.alpha_attn.data.fill_(init)
        self.alpha_ff.data.fill_(init)

    def forward(self, x: Tensor, allowed: Tensor) -> Tensor:
        b, k, h = x.shape
        d = h // self.heads
        q, kk, v = self.qkv(x).view(b, k, 3, self.heads, d).permute(2, 0, 3, 1, 4)  # each [B, heads, K, d]
        scores = masked_fill_min((q @ kk.transpose(-1, -2)) * (1.0 / math.sqrt(d)), allowed)
        attn = torch.softmax(scores, dim=-1) * allowed.to(x.dtype)  # a query with no allowed key -> zeros
        if self.dropout > 0 and self.training:
            attn = F.dropout(attn, p=self.dropout)
        o = (attn @ v).transpose(1, 2).reshape(b, k, h)
        x = x + self.alpha_attn * self.out(o)
        return x + self.alpha_ff * self.ff(x)


@register("local_predictor", "hypergraph_attention", params=HypergraphAttentionParams,
          summary="Dango-style hypergraph self-attention over the deleted genes (dynamic - static embeddings)")
class HypergraphAttention(LocalPredictor):
    r"""The hypergraph self-attention head of Dango (Zhang et al., "DANGO: Predicting higher-order genetic
    interactions", 2020), after Hyper-SAGNN (Zhang et al., ICLR 2020).

    The deleted genes of a sample form one hyperedge. Their states are layer-normalised (per gene), then
    each gets a *static* embedding
    :math:`\mathbf{s}_i = \mathrm{MLP}(\mathbf{x}_i)` (independent of the others) and a *dynamic* one from
    ``num_layers`` blocks of multi-head self-attention over the other genes of the set, with ReZero
    residuals (Bachlechner et al., 2020):

    .. math::
        \mathbf{d}^{(0)} = \mathbf{x}, \quad
        \mathbf{d}^{(l+1)} = \mathbf{d}' + \beta_l\,\mathrm{FF}(\mathbf{d}'), \;
        \mathbf{d}' = \mathbf{d}^{(l)} + \alpha_l\,\mathrm{MHA}(\mathbf{d}^{(l)})

    The interaction is read from how much the context moves each gene:

    .. math::
        \hat{y} = \frac{1}{|S|}\sum_{i \in S} \mathbf{w}^\top (\mathbf{d}_i - \mathbf{s}_i)^{\odot 2} + b

    Works on padded ``[B, K, H]`` sets with a mask (sets of 2 and 3 genes mix in one batch), with no loop
    over samples and no host syncs. ``repr`` is the masked mean of :math:`(\mathbf{d} - \mathbf{s})^2`.

    Args:
        num_layers: attention blocks (default 2).
        num_heads: heads (default 4).
        static_num_layers: static MLP depth (default 1).
        ff_mult: feed-forward width multiple (default 2).
        activation: MLP activation (default ``gelu``).
        dropout: attention / feed-forward dropout (default 0).
        rezero: ReZero residual scales starting at 0 (default True); False = plain residuals.
        exclude_self: attend only to the other genes of the set (default True).
        dim, num_targets: from the model.

    Shapes: ``x.states [B, K, dim]``, ``x.mask [B, K]`` -> ``(pred [B, T], repr [B, dim])``
    """

    def __init__(
        self,
        num_layers: int = 2,
        num_heads: int = 4,
        static_num_layers: int = 1,
        ff_mult: int = 2,
        activation: str = "gelu",
        dropout: float = 0.0,
        rezero: bool = True,
        exclude_self: bool = True,
        *,
        dim: int,
        num_targets: int,
    ):
        super().__init__(dim=dim, num_targets=num_targets)
        if dim % num_heads:
            raise ValueError(f"hypergraph_attention: dim {dim} is not divisible by num_heads={num_heads}")
        self.num_heads, self.exclude_self = num_heads, exclude_self
        self.input_norm = nn.LayerNorm(dim)
        self.static = MLP(dim, dim, dim, static_num_layers, activation=activation, plain_last=False)
        self.layers = nn.ModuleList(
            _SetAttention(dim, num_heads, ff_mult, activation, dropout, rezero) for _ in range(num_layers)
        )
        self.readout = nn.Linear(dim, num_targets)

    def reset_parameters(self) -> None:
        self.input_norm.reset_parameters()
        self.static.reset_parameters()
        for layer in self.layers:
            layer.reset_parameters()
        self.readout.reset_parameters()

    def forward(self, x: HeadInput) -> Head:
        emb, mask = x.states, x.mask
        self.check_inputs(emb, mask)
        k = emb.shape[1]
        allowed = mask[:, None, None, :]  # [B, 1, 1, K] keys that exist
        if self.exclude_self:
            allowed = allowed & ~torch.eye(k, dtype=torch.bool, device=emb.device)
        emb = self.input_norm(emb)  # per gene: keeps the squared differences O(1) whatever the GNN's scale
        static = self.static(emb)
        dyn = emb
        for layer in self.layers:
            dyn = layer(dyn, allowed)
        diff2 = (dyn - static).square()  # [B, K, H]
        w = mask.to(emb.dtype)
        denom = w.sum(1, keepdim=True).clamp_min(1.0)  # [B, 1]
        per_gene = self.readout(diff2)  # [B, K, T]
        pred = torch.einsum("bk,bkt->bt", w, per_gene) / denom
        rep = torch.einsum("bk,bkh->bh", w, diff2) / denom
        return pred, rep


#: what the pair MLP of ``pair_relations`` can read, in the order its input is concatenated
PairRead = Literal["states", "inputs", "relations"]
PAIR_READS: tuple[PairRead, ...] = ("states", "inputs", "relations")


class PairRelationParams(Params):
    num_layers: int = Field(2, ge=1, description="layers of the pair MLP")
    hidden_dim: int | None = Field(None, ge=1, description="pair MLP width (default dim)")
    activation: str = Field("gelu", description="activation of the pair MLP")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout in the pair MLP")
    attention: bool = Field(True, description="also run the hypergraph-attention head and add its prediction")
    attention_layers: int = Field(1, ge=1, description="attention blocks of that head")
    num_heads: int = Field(4, ge=1, description="attention heads of that head")
    gene_values: list[str] = Field(
        default_factory=list,
        description="per-gene feature columns (names or fnmatch patterns over data.features' column names, "
        "e.g. 'emap.single_phenotype', 'smf.*') whose raw values the pair MLP also reads, as min, max and "
        "product over each pair of deleted genes: a direct path for per-gene phenotypes that would otherwise "
        "be mixed with every other input by the preprocessor",
    )
    reads: list[PairRead] = Field(
        default_factory=lambda: list(PAIR_READS),
        min_length=1,
        description="what the pair MLP reads of each pair: 'states' (the genes' message-passing states), "
        "'inputs' (their preprocessed gene inputs), 'relations' (edges, weights, shared neighbours and the "
        "gene_values columns); leaving out 'states' and 'inputs' keeps the head from learning the training "
        "genes themselves",
    )

    @model_validator(mode="after")
    def _values_need_relations(self) -> "PairRelationParams":
        if self.gene_values and "relations" not in self.reads:
            raise ValueError("gene_values are read through the relations: add 'relations' to reads")
        return self


@register(
    "local_predictor",
    "pair_relations",
    summary="pair/set path: MLP over every pair of deleted genes (their states + edges, weights and shared "
    "neighbours in every graph), averaged; optionally plus hypergraph attention",
    params=PairRelationParams,
)
class PairRelationHead(LocalPredictor):
    r"""A local head that sees how the deleted genes relate to each other in every graph.

    For each unordered pair :math:`\{i, j\}` of a sample's deleted genes, with layer-normalised wildtype
    states :math:`h_i, h_j`, their gene inputs :math:`u_i, u_j` (preprocessed features / ID vectors, before
    message passing; ``inputs``) and relation features :math:`r_{ij}` (``[4 G]``: adjacency, edge weight,
    log1p shared neighbours and Jaccard index per edge type, then min, max and product of each of the
    ``gene_values`` feature columns; :class:`~cellgi.nn.relations.PairRelations`):

    .. math::
        \hat{y} = \frac{1}{|\mathrm{pairs}|} \sum_{i<j} \mathrm{MLP}([h_i + h_j,\; h_i \odot h_j,\;
        |h_i - h_j|,\; u_i + u_j,\; u_i \odot u_j,\; |u_i - u_j|,\; r_{ij}])

    which is invariant to the order of the genes. With ``attention: true`` the hypergraph-attention
    head's prediction is added. The declared capability ``uses_relations = True`` makes the model fill
    ``x.relations [B, K, K, R]`` (and build the head with ``num_relations = R``); ``x.inputs [B, K, dim]``
    are the genes' initial states (the states themselves when None).

    Shapes: ``x.states [B, K, dim]``, ``x.mask [B, K]``, ``x.relations [B, K, K, R]``, ``x.inputs
    [B, K, dim]`` -> ``(pred [B, T], repr [B, dim])``
    """

    uses_relations: ClassVar[bool] = True

    def __init__(
        self,
        num_layers: int = 2,
        hidden_dim: int | None = None,
        activation: str = "gelu",
        dropout: float = 0.0,
        attention: bool = True,
        attention_layers: int = 1,
        num_heads: int = 4,
        gene_values: list[str] | None = None,
        reads: Sequence[str] = PAIR_READS,
        *,
        dim: int,
        num_targets: int,
        num_relations: int = 0,
    ):
        super().__init__(dim=dim, num_targets=num_targets)
        if not reads or set(reads) - set(PAIR_READS):
            raise ValueError(f"reads must be a non-empty subset of {', '.join(PAIR_READS)}; got {list(reads)}")
        self.reads = tuple(r for r in PAIR_READS if r in reads)
        self.num_relations = num_relations
        #: the feature columns the model appends to ``relations`` (it resolves the patterns; see LazyDango)
        self.gene_values = list(gene_values or [])
        self.input_norm = nn.LayerNorm(dim)
        width = hidden_dim or dim
        self.input_norm_u = nn.LayerNorm(dim)
        in_dim = (3 * dim * ("states" in self.reads) + 3 * dim * ("inputs" in self.reads)
                  + num_relations * ("relations" in self.reads))
        if in_dim == 0:
            raise ValueError("pair_relations reads only 'relations', but the graphs give no relation features")
        self.pair_mlp = MLP(in_dim, width, width, num_layers, "layer", activation, dropout, plain_last=False)
        self.readout = nn.Linear(width, num_targets)
        self.to_repr = nn.Linear(width, dim)
        self.attention = (
            HypergraphAttention(attention_layers, num_heads, dropout=dropout, dim=dim, num_targets=num_targets)
            if attention else None
        )

    def reset_parameters(self) -> None:
        self.input_norm.reset_parameters()
        self.input_norm_u.reset_parameters()
        self.pair_mlp.reset_parameters()
        self.readout.reset_parameters()
        self.to_repr.reset_parameters()
        if self.attention is not None:
            self.attention.reset_parameters()

    def forward(self, x: HeadInput) -> Head:
        emb, mask, relations, inputs = x.states, x.mask, x.relations, x.inputs
        self.check_inputs(emb, mask)
        b, k, _ = emb.shape
        if relations is None:
            if self.num_relations:
                raise ValueError("pair_relations head needs the relations [B, K, K, R] (the model passes them)")
            relations = emb.new_zeros(b, k, k, 0)
        if relations.shape[:3] != (b, k, k) or relations.shape[3] != self.num_relations:
            raise ValueError(f"relations must be [{b}, {k}, {k}, {self.num_relations}], got {tuple(relations.shape)}")
        iu, ju = torch.triu_indices(k, k, 1, device=emb.device)
        parts = []
        if "states" in self.reads:
            h = self.input_norm(emb)
            hi, hj = h[:, iu], h[:, ju]  # [B, P, H]
            parts += [hi + hj, hi * hj, (hi - hj).abs()]
        if "inputs" in self.reads:
            u = self.input_norm_u(emb if inputs is None else inputs)
            ui, uj = u[:, iu], u[:, ju]
            parts += [ui + uj, ui * uj, (ui - uj).abs()]
        if "relations" in self.reads:
            parts.append(relations[:, iu, ju].to(emb.dtype))
        z = self.pair_mlp(torch.cat(parts, -1))  # [B, P, W]
        pm = (mask[:, iu] & mask[:, ju]).to(z.dtype)  # [B, P]
        denom = pm.sum(1, keepdim=True).clamp_min(1.0)
        zm = torch.einsum("bp,bpw->bw", pm, z) / denom
        pred = self.readout(zm)
        rep = self.to_repr(zm)
        if self.attention is not None:
            ap, ar = self.attention(x)
            pred, rep = pred + ap, rep + ar
        return pred, rep


