"""The ``additive_term`` role: a per-gene additive part of the prediction, computed from gene inputs.

With ``model.additive_term`` set, the model predicts

    prediction = additive(deleted genes) + scale * interaction(graph model)

where ``additive = sum_{g deleted} f(x_g)`` is a per-gene function of each deleted gene's input
(its features / ID embedding after the preprocessor, or its wildtype state after message passing), and
``scale`` is a learnable per-target factor that starts at 0: training starts from a purely additive
model (which, unlike the ridge baseline, exists for unseen genes because it reads their features) and
the interaction part grows only as far as it helps.

Call: ``forward(inputs [B, K, dim], states [B, K, dim], mask [B, K]) -> additive [B, T]``;
``combine(additive [B, T], interaction [B, T]) -> prediction [B, T]``.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from cellgi.nn.mlp import MLP
from cellgi.registry import Params, register

__all__ = ["AdditiveTerm", "GeneMLPAdditive", "GeneMLPAdditiveParams"]


class AdditiveTerm(nn.Module):
    """Base of the ``additive_term`` role; owns the ReZero ``scale`` of the interaction part."""

    def __init__(self, *, dim: int, num_targets: int):
        super().__init__()
        self.dim, self.num_targets = dim, num_targets
        self.scale = nn.Parameter(torch.zeros(num_targets))

    def combine(self, additive: Tensor, interaction: Tensor) -> Tensor:
        return additive + self.scale * interaction

    def forward(self, inputs: Tensor, states: Tensor, mask: Tensor) -> Tensor:  # pragma: no cover
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

    def forward(self, inputs: Tensor, states: Tensor, mask: Tensor) -> Tensor:
        x = {"inputs": inputs, "states": states}.get(self.input)
        if x is None:
            x = torch.cat([inputs, states], -1)
        per_gene = self.mlp(x)  # [B, K, T]
        return (per_gene * mask.unsqueeze(-1).to(per_gene.dtype)).sum(1)
