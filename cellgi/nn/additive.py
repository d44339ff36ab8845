"""The ``additive_term`` role: a per-gene additive part of the prediction, computed from gene inputs.

With ``model.additive_term`` set, the model predicts

    prediction = additive(deleted genes) + scale * interaction(graph model)

where ``additive = sum_{g deleted} f(x_g)`` is a per-gene function of each deleted gene's input
(its features / ID embedding after the preprocessor, or its wildtype state after message passing), and
``scale`` is a learnable per-target factor that starts at 0: training starts from a purely additive
model (which, unlike the ridge baseline, exists for unseen genes because it reads their features) and
the interaction part grows only as far as it helps.

Call: ``forward(x: HeadInput) -> additive [B, T]`` (``x.inputs [B, K, dim]``, ``x.states [B, K, dim]``,
``x.mask [B, K]``; :class:`~cellgi.nn.heads.base.HeadInput`) and ``combine(additive [B, T], interaction
[B, T], x) -> prediction [B, T]``.

Capabilities a member declares (the ``additive_term`` role's contract, checked at registration; the base
class :class:`AdditiveTerm` declares the defaults, all False):

- ``uses_gene_values`` (class): the term reads ``x.values [B, K, V]``, the raw values of the feature
  columns its ``gene_values`` parameter names (resolved by the model against ``data.features``' column
  names), and ``x.genes [B, K]``; it is built with ``num_values = V``, ``num_genes`` and ``value_names``.
- ``uses_seen`` (per instance): :meth:`~AdditiveTerm.combine` reads ``x.seen [B]``.
- ``wants_memory`` (per instance, with ``set_memory``) and ``wants_ridge_init`` (per instance, with
  ``warm_start``): what the training code prepares from the training split before the first step.

A per-instance capability is declared True on the class when some configuration uses it; the instance
sets it from its params (``pair_values`` wants a memory only with ``partner_memory`` set).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from cellgi.nn.columns import match_columns
from cellgi.nn.heads.base import HeadInput
from cellgi.nn.mlp import MLP
from cellgi.registry import Params, register

__all__ = ["AdditiveTerm", "GeneMLPAdditive", "GeneMLPAdditiveParams", "PairValuesAdditive", "PairValuesParams"]


class AdditiveTerm(nn.Module):
    """Base of the ``additive_term`` role; owns the ReZero ``scale`` of the interaction part and declares
    the role's capabilities (see the module docstring)."""

    #: reads ``HeadInput.values`` and ``HeadInput.genes`` (built with ``num_values``, ``num_genes``, ``value_names``)
    uses_gene_values: ClassVar[bool] = False
    #: per instance: :meth:`combine` reads ``HeadInput.seen [B]`` (the set deletes a gene with training samples)
    uses_seen: bool = False
    #: per instance: the training code calls ``set_memory`` with the training split
    wants_memory: bool = False
    #: per instance: the training code calls ``warm_start`` with the ridge fit on the training split
    wants_ridge_init: bool = False

    def __init__(self, *, dim: int, num_targets: int):
        super().__init__()
        self.dim, self.num_targets = dim, num_targets
        self.scale = nn.Parameter(torch.zeros(num_targets))

    def combine(self, additive: Tensor, interaction: Tensor, x: HeadInput) -> Tensor:
        """The prediction from the additive part and the interaction part (``[B, T]`` each)."""
        return additive + self.scale * interaction

    def forward(self, x: HeadInput) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.scale)


class GeneMLPAdditiveParams(Params):
    input: Literal["inputs", "states", "both"] = Field(
        "both",
        description="what f reads per deleted gene: inputs (features/ID after the preprocessor), states "
        "(wildtype state after message passing: sees the gene's neighbourhood) or both (concatenated)",
    )
    num_layers: int = Field(2, ge=1, description="MLP depth of f")
    hidden_dim: int | None = Field(None, ge=1, description="MLP width (default dim)")
    activation: str = Field("gelu")
    dropout: float = Field(0.0, ge=0, lt=1)


@register("additive_term", "gene_mlp", summary="sum over deleted genes of an MLP of each gene's input; "
          "interaction part scaled from 0", params=GeneMLPAdditiveParams)
class GeneMLPAdditive(AdditiveTerm):
    """``additive = sum_g MLP(x_g)`` over the deleted genes (masked), one output per target."""

    def __init__(self, input: str = "both", num_layers: int = 2, hidden_dim: int | None = None,
                 activation: str = "gelu", dropout: float = 0.0, *, dim: int, num_targets: int):
        super().__init__(dim=dim, num_targets=num_targets)
        self.input = input
        in_dim = 2 * dim if input == "both" else dim
        self.mlp = MLP(in_dim, hidden_dim or dim, num_targets, num_layers, "layer", activation, dropout)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.mlp.reset_parameters()

    def forward(self, x: HeadInput) -> Tensor:
        inputs, states, mask = x.need("inputs", "gene_mlp"), x.states, x.mask
        h = {"inputs": inputs, "states": states}.get(self.input)
        if h is None:
            h = torch.cat([inputs, states], -1)
        per_gene = self.mlp(h)  # [B, K, T]
        return (per_gene * mask.unsqueeze(-1).to(per_gene.dtype)).sum(1)


class PairValuesParams(Params):
    gene_values: list[str] = Field(
        ..., min_length=1,
        description="per-gene feature columns (names or fnmatch patterns over data.features' column names, "
        "e.g. 'emap.*', 'smf.fitness') whose values the term reads",
    )
    num_layers: int = Field(3, ge=1, description="MLP depth")
    hidden_dim: int = Field(64, ge=1, description="MLP width")
    activation: str = Field("gelu", description="activation of the MLP")
    dropout: float = Field(0.1, ge=0, lt=1, description="dropout after the MLP's hidden activations")
    gene_bias: bool = Field(
        False,
        description="also learn a per-gene effect (one number per gene and target, added for each deleted "
        "gene; start: gene_bias_init): only genes with training samples ever get a gradient, so genes never "
        "seen in training keep exactly 0 (the ridge baseline's per-gene effect, learned jointly)",
    )
    gene_bias_init: Literal["ridge", "zero"] = Field(
        "ridge",
        description="start of the per-gene effects: 'ridge' = the additive ridge baseline's coefficients on the "
        "training split (fitted by the training code before the first step; the MLP's output bias takes its "
        "intercept), 'zero' = 0",
    )
    interaction_on_unseen: bool = Field(
        True,
        description="false: a sample none of whose deleted genes has training samples is predicted by this "
        "term alone, without the graph model's interaction part (which is learned from the training genes' "
        "own representations and, measured on the E-MAP, does not carry over to pairs of two unseen genes); "
        "samples with a seen gene are unchanged",
    )
    partner_memory: float | None = Field(
        None, gt=0,
        description="bandwidth of a memory of the training samples (null = off): for each deleted gene with "
        "training samples, the kernel-weighted mean of its training samples' (normalised) scores, weighted by "
        "how close the partners' values are to this sample's partners' (Gaussian kernel on the RMS difference "
        "of the gene_values columns; a sample never reads its own score), fed per gene with its total weight "
        "to the MLP (min and max over each pair); a gene never seen in training recalls nothing, so it "
        "applies to pairs with one unseen gene",
    )
    memory_values: list[str] = Field(
        default_factory=list,
        description="which of the gene_values columns the memory compares partners on (names or fnmatch "
        "patterns, e.g. 'emap.single_phenotype'); default: all of them",
    )
    memory_dropout: float = Field(
        0.5, ge=0, lt=1,
        description="in training, the chance that a gene's recall from the memory is dropped, as if the gene "
        "had no training samples: the MLP learns the cases it meets on genes never seen (one or no recall)",
    )
    gene_profiles: int = Field(
        0, ge=0,
        description="width of a per-gene interaction profile (0 = off): each gene seen in training learns "
        "how it interacts with partners as a function of the partner's values (a vector, started at 0, "
        "dotted with a learned map of the partner's values); genes never seen in training keep exactly 0, "
        "so pairs of two unseen genes get the value MLP's prediction alone",
    )


@register("additive_term", "pair_values", summary="MLP of each pair of deleted genes' measured per-gene values "
          "(min, max, product; e.g. single-mutant phenotypes), averaged over pairs; interaction part scaled "
          "from 0", params=PairValuesParams)
class PairValuesAdditive(AdditiveTerm):
    r"""The part of an interaction that the deleted genes' own measured phenotypes explain.

    For the values :math:`v_g \in \mathbb{R}^V` of the named feature columns (single-mutant phenotype,
    fitness, ...; standardised by their feature source) and every unordered pair :math:`\{i, j\}` of a
    sample's deleted genes:

    .. math::
        a = \frac{1}{|\mathrm{pairs}|} \sum_{i<j} \mathrm{MLP}\bigl([\min(v_i, v_j),\; \max(v_i, v_j),\;
        v_i \odot v_j]\bigr)

    symmetric in the genes. It reads no gene identity and no learned gene representation, so it applies
    as it is to genes never seen in training (in a screen, epsilon is largely a non-linear function of the
    two single phenotypes: docs/benchmarks.md); the graph model's interaction part is added on top,
    scaled from 0. A sample with a single deleted gene has no pair: its MLP part is 0.

    With ``gene_bias: true``, :math:`\sum_{g} b_g` over the deleted genes is added: a learned effect per
    gene (``[N, T]``; where it starts: ``gene_bias_init``). Only genes in training samples receive gradients, so a gene never seen in
    training contributes exactly 0 (the screen's query genes, seen in every split, get their own effect).
    With ``gene_bias_init: ridge`` (default) training starts from the ridge baseline's per-gene effects
    (:meth:`warm_start`, called by the training code with the fit on the training split), so the model
    starts where the additive baseline ends and early stopping on a gene-disjoint validation split keeps
    what the rest adds only where it helps.

    Options for genes seen in training (each leaves genes never seen untouched): ``gene_profiles`` (a
    learned per-gene profile read against the partner's values), ``partner_memory`` (a kernel-weighted
    recall of the gene's training samples with similar partners, an input of the MLP), and
    ``interaction_on_unseen: false`` (samples of unseen genes only get this term; :meth:`combine`).
    """

    #: the memory's buffers (registered only with partner_memory; see __init__)
    mem_ptr: Tensor
    mem_values: Tensor
    mem_y: Tensor
    mem_key: Tensor

    uses_gene_values: ClassVar[bool] = True
    # per instance (set from the params in __init__); True here: some configuration uses each
    uses_seen: bool = True
    wants_memory: bool = True
    wants_ridge_init: bool = True

    def __init__(self, gene_values: list[str], num_layers: int = 3, hidden_dim: int = 64, activation: str = "gelu",
                 dropout: float = 0.1, gene_bias: bool = False, gene_bias_init: str = "ridge",
                 gene_profiles: int = 0, interaction_on_unseen: bool = True, partner_memory: float | None = None,
                 memory_dropout: float = 0.5, memory_values: list[str] | None = None, *, dim: int,
                 num_targets: int, num_values: int = 0, num_genes: int = 0, value_names: list[str] | None = None):
        super().__init__(dim=dim, num_targets=num_targets)
        if num_values < 1:
            raise ValueError("pair_values needs at least one value column (the model resolves gene_values)")
        self.gene_values, self.num_values = list(gene_values), int(num_values)
        #: Gaussian-kernel bandwidth of the training-sample memory (None: off); see :meth:`set_memory`
        self.memory_bandwidth = None if partner_memory is None else float(partner_memory)
        self.memory_dropout = float(memory_dropout)
        #: the value columns the memory compares partners on (indices into the gene_values columns)
        self.memory_columns = _memory_columns(list(memory_values or []), list(value_names or []), num_values)
        extra = 2 * (num_targets + 1) if self.memory_bandwidth is not None else 0
        self.mlp = MLP(3 * num_values + extra, hidden_dim, num_targets, num_layers, "none", activation, dropout)
        if self.memory_bandwidth is not None and num_genes < 1:
            raise ValueError("pair_values with partner_memory needs num_genes (the model passes it)")
        # the memory (set by the training code from the training split; empty until then, saved in checkpoints):
        # per gene (CSR over mem_ptr) its training samples' partner values, scores and set keys. Registered only
        # with partner_memory, so that other checkpoints keep their keys.
        if self.memory_bandwidth is not None:
            self.register_buffer("mem_ptr", torch.zeros(num_genes + 1, dtype=torch.long))
            self.register_buffer("mem_values", torch.zeros(0, len(self.memory_columns)))
            self.register_buffer("mem_y", torch.zeros(0, num_targets))
            self.register_buffer("mem_key", torch.zeros(0, dtype=torch.long))
        if gene_bias and num_genes < 1:
            raise ValueError("pair_values with gene_bias needs num_genes (the model passes it)")
        self.bias = nn.Parameter(torch.zeros(num_genes, num_targets)) if gene_bias else None
        if gene_profiles and num_genes < 1:
            raise ValueError("pair_values with gene_profiles needs num_genes (the model passes it)")
        self.uses_seen = not interaction_on_unseen
        #: the training code calls set_memory with the training split when this is True
        self.wants_memory = self.memory_bandwidth is not None
        self.profile_dim = int(gene_profiles)
        #: per-gene profiles [N, d] (start 0: a gene without training samples never leaves it) and the map of
        #: a partner's values to d x T coefficients
        self.profiles = nn.Parameter(torch.zeros(num_genes, self.profile_dim)) if self.profile_dim else None
        self.partner = (MLP(num_values, hidden_dim, self.profile_dim * num_targets, 2, "none", activation, dropout)
                        if self.profile_dim else None)
        #: the training code calls warm_start(coef, intercept) with the ridge fit when this is True
        self.wants_ridge_init = bool(gene_bias) and gene_bias_init == "ridge"

    @torch.no_grad()
    def warm_start(self, coef: Tensor, intercept: Tensor) -> None:
        """Per-gene effects from a fitted additive model (``coef [N, T]``, ``intercept [T]``, in the units
        the model predicts: normalised targets); the intercept goes to the MLP's output bias."""
        if self.bias is None:
            raise ValueError("pair_values: warm_start needs gene_bias: true")
        if coef.shape != self.bias.shape or intercept.shape != (self.num_targets,):
            raise ValueError(f"warm_start: coef must be {tuple(self.bias.shape)} and intercept "
                             f"({self.num_targets},), got {tuple(coef.shape)} and {tuple(intercept.shape)}")
        self.bias.copy_(torch.nan_to_num(coef.to(self.bias.dtype)))
        last = [m for m in self.mlp.modules() if isinstance(m, nn.Linear)][-1]
        if last.bias is not None:
            last.bias.add_(torch.nan_to_num(intercept.to(last.bias.dtype)))

    @torch.no_grad()
    def set_memory(self, genes: Tensor, mask: Tensor, y: Tensor, values: Tensor) -> None:
        """Remember the training samples: ``genes [S, K]`` (padded), ``mask [S, K]``, ``y [S, T]`` (normalised
        scores, NaN where not measured) and ``values [N, V]`` (every gene's value columns). Each (gene,
        sample) pair becomes one entry holding the mean values of the sample's other genes, its scores and
        the sample's set key."""
        if self.memory_bandwidth is None:
            raise ValueError("pair_values: set_memory needs partner_memory")
        n = self.mem_ptr.numel() - 1
        genes, mask = genes.to(torch.long), mask.to(torch.bool)
        cols = torch.as_tensor(self.memory_columns, dtype=torch.long)
        others = partner_values(values.to(torch.float32)[:, cols][genes.clamp_min(0)], mask)  # [S, K, V']
        row, col = (mask & (mask.sum(1, keepdim=True) > 1)).nonzero(as_tuple=True)  # single genes: no partner
        owner = genes[row, col]
        order = torch.argsort(owner, stable=True)
        row, col, owner = row[order], col[order], owner[order]
        ptr = torch.zeros(n + 1, dtype=torch.long)
        ptr[1:] = torch.cumsum(torch.bincount(owner, minlength=n), 0)
        dev = self.mem_ptr.device
        self.mem_ptr = ptr.to(dev)
        self.mem_values = others[row, col].to(dev)
        self.mem_y = y.to(torch.float32)[row].to(dev)
        self.mem_key = set_keys(genes, mask)[row].to(dev)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[no-untyped-def]
        # the memory's size is the training split's: take the saved shapes before the copy
        for name in ("mem_ptr", "mem_values", "mem_y", "mem_key") if self.memory_bandwidth is not None else ():
            saved = state_dict.get(prefix + name)
            if saved is not None and saved.shape != getattr(self, name).shape:
                setattr(self, name, torch.empty_like(saved, device=getattr(self, name).device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _recall(self, genes: Tensor, mask: Tensor, values: Tensor) -> Tensor:
        """``[B, K, T + 1]``: per deleted gene, the kernel-weighted mean score of its training samples whose
        partners resemble this sample's partners (0 where nothing is remembered), and log1p of the weight.
        In training each gene's recall is dropped with probability ``memory_dropout`` (as if unseen)."""
        b, k = genes.shape
        t = self.mem_y.shape[1]
        out = values.new_zeros(b, k, t + 1)
        if self.mem_key.numel() == 0:
            return out
        g = genes.to(torch.long).clamp_min(0)
        use = mask & (mask.sum(1, keepdim=True) > 1)
        if self.training and self.memory_dropout > 0:
            use = use & (torch.rand(use.shape, device=use.device) >= self.memory_dropout)
        cols = torch.as_tensor(self.memory_columns, dtype=torch.long, device=values.device)
        q = partner_values(values.to(self.mem_values.dtype).index_select(-1, cols), mask)  # [B, K, V']
        key = set_keys(g, mask)  # [B]
        start, stop = self.mem_ptr[g], self.mem_ptr[g + 1]
        flat = torch.where(use, stop - start, torch.zeros_like(start)).reshape(-1)
        total = int(flat.sum())
        if total == 0:
            return out
        slot = torch.repeat_interleave(torch.arange(flat.numel(), device=flat.device), flat)  # [E]
        offs = torch.cumsum(flat, 0) - flat
        entry = start.reshape(-1)[slot] + (torch.arange(total, device=flat.device) - offs[slot])
        d2 = (self.mem_values[entry] - q.reshape(b * k, -1)[slot]).square().mean(-1)
        bandwidth = self.memory_bandwidth
        assert bandwidth is not None  # a memory exists only with partner_memory
        w = torch.exp(-0.5 * d2 / bandwidth ** 2)
        w = w * (self.mem_key[entry] != key[slot // k]).to(w.dtype)  # never a sample's own score
        y = self.mem_y[entry]
        wy = w.unsqueeze(1) * (~torch.isnan(y)).to(w.dtype)
        num = out.new_zeros(b * k, t).index_add_(0, slot, (wy * torch.nan_to_num(y)).to(out.dtype))
        den = out.new_zeros(b * k, t).index_add_(0, slot, wy.to(out.dtype))
        out = out.reshape(b * k, t + 1)
        out[:, :t] = torch.where(den > 0, num / den.clamp_min(1e-12), torch.zeros_like(num))
        out[:, t] = torch.log1p(den.sum(1) / max(t, 1))
        return out.view(b, k, t + 1)

    def combine(self, additive: Tensor, interaction: Tensor, x: HeadInput) -> Tensor:
        if not self.uses_seen:
            return super().combine(additive, interaction, x)
        seen = x.need("seen", "pair_values with interaction_on_unseen: false")
        return additive + self.scale * interaction * seen.to(interaction.dtype).unsqueeze(-1)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.mlp.reset_parameters()
        if self.bias is not None:
            nn.init.zeros_(self.bias)
        if self.profiles is not None and self.partner is not None:
            nn.init.zeros_(self.profiles)
            self.partner.reset_parameters()

    def forward(self, x: HeadInput) -> Tensor:
        inputs, mask, values, genes = x.need("inputs", "pair_values"), x.mask, x.values, x.genes
        if values is None or values.shape[-1] != self.num_values:
            raise ValueError(f"pair_values needs values [B, K, {self.num_values}] (the model passes them)")
        k = values.shape[1]
        iu, ju = torch.triu_indices(k, k, 1, device=values.device)
        vi, vj = values[:, iu].to(inputs.dtype), values[:, ju].to(inputs.dtype)  # [B, P, V]
        parts = [torch.minimum(vi, vj), torch.maximum(vi, vj), vi * vj]
        if self.memory_bandwidth is not None:
            if genes is None:
                raise ValueError("pair_values with partner_memory needs the deleted genes' indices (the model passes them)")
            recall = self._recall(genes, mask.to(torch.bool), values).to(inputs.dtype)  # [B, K, T + 1]
            ri, rj = recall[:, iu], recall[:, ju]
            parts += [torch.minimum(ri, rj), torch.maximum(ri, rj)]
        out = self.mlp(torch.cat(parts, -1))  # [B, P, T]
        if self.profiles is not None:
            if genes is None:
                raise ValueError("pair_values with gene_profiles needs the deleted genes' indices (the model passes them)")
            g = genes.to(torch.long)
            e = self.profiles.index_select(0, g.reshape(-1)).view(*g.shape, -1).to(out.dtype)  # [B, K, d]
            coef = self.partner(values.to(out.dtype)).view(*values.shape[:2], self.profile_dim, -1)  # [B, K, d, T]
            # gene i's profile read against partner j's values, and j's against i's
            out = out + torch.einsum("bpd,bpdt->bpt", e[:, iu], coef[:, ju]) \
                + torch.einsum("bpd,bpdt->bpt", e[:, ju], coef[:, iu])
        pm = (mask[:, iu] & mask[:, ju]).to(out.dtype)
        pred = torch.einsum("bp,bpt->bt", pm, out) / pm.sum(1, keepdim=True).clamp_min(1.0)
        if self.bias is not None:
            if genes is None:
                raise ValueError("pair_values with gene_bias needs the deleted genes' indices (the model passes them)")
            per_gene = self.bias.index_select(0, genes.reshape(-1).to(torch.long)).view(*genes.shape, -1)
            pred = pred + (per_gene.to(pred.dtype) * mask.unsqueeze(-1).to(pred.dtype)).sum(1)
        return pred


def partner_values(values: Tensor, mask: Tensor) -> Tensor:
    """``[S, K, V]``: for each gene of each set, the mean values of the set's other genes (0 where it has
    none). ``values [S, K, V]``: each set's genes' values (anything where ``mask [S, K]`` is False)."""
    m = mask.to(values.dtype).unsqueeze(-1)
    v = values * m
    others = (v.sum(1, keepdim=True) - v) / (m.sum(1, keepdim=True) - m).clamp_min(1.0)
    return others * m


def set_keys(genes: Tensor, mask: Tensor) -> Tensor:
    """``[S]`` int64 key of each gene set, independent of order and padding (equal sets, equal keys)."""
    g = torch.where(mask, genes.to(torch.long) + 1, torch.zeros_like(genes, dtype=torch.long))
    g = torch.sort(g, dim=1, descending=True).values
    key = torch.zeros(g.shape[0], dtype=torch.long, device=g.device)
    for j in range(g.shape[1]):  # polynomial hash, int64 arithmetic wraps
        key = key * 1_000_003 + g[:, j]
    return key


def _memory_columns(patterns: list[str], names: list[str], num_values: int) -> list[int]:
    """Indices of the gene_values columns that ``memory_values`` names (all of them when it names none)."""
    if not patterns:
        return list(range(num_values))
    if len(names) != num_values:
        raise ValueError("pair_values: memory_values needs the names of the gene_values columns (the model passes them)")
    cols, unmatched = match_columns(patterns, names)
    if unmatched:
        raise ValueError(f"additive_term.memory_values: {', '.join(map(repr, unmatched))} matches none of the "
                         f"gene_values columns ({', '.join(names)})")
    return cols
