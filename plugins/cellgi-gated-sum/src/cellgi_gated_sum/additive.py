"""``value_linear`` additive term: a linear function of each deleted gene's measured per-gene values.

It declares the ``additive_term`` capability ``uses_gene_values``: cellgi then resolves the columns its
``gene_values`` parameter names (against ``data.features``' column names), builds it with
``num_values``, ``num_genes`` and ``value_names``, and hands it the columns' raw values of the deleted
genes as ``HeadInput.values [B, K, V]``.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from torch import Tensor, nn

from cellgi.nn.additive import AdditiveTerm
from cellgi.nn.heads import HeadInput
from cellgi.registry import Params, register

__all__ = ["ValueLinearAdditive", "ValueLinearParams"]


class ValueLinearParams(Params):
    gene_values: list[str] = Field(
        ..., min_length=1,
        description="per-gene feature columns (names or fnmatch patterns over data.features' column names, "
        "e.g. 'emap.single_phenotype', 'smf.*') whose values the term reads",
    )
    bias: bool = Field(True, description="add a learned offset per deleted gene (the same for every gene)")


@register("additive_term", "value_linear",
          summary="sum over the deleted genes of a linear map of their measured per-gene values; "
          "interaction part scaled from 0", params=ValueLinearParams)
class ValueLinearAdditive(AdditiveTerm):
    r"""The additive part as a linear function of the deleted genes' own values.

    .. math::
        a = \sum_{g \in S} (\mathbf{W} \mathbf{v}_g + \mathbf{b})

    with :math:`\mathbf{v}_g \in \mathbb{R}^V` the values of the named feature columns of gene
    :math:`g` (single-mutant phenotype, fitness, ...). It reads no gene identity, so it applies as it is
    to genes never seen in training; cellgi adds the graph model's interaction part, scaled from 0.

    Args:
        gene_values: the feature columns (resolved by cellgi; at least one).
        bias: learned offset per deleted gene (default True).
        dim, num_targets, num_values, num_genes, value_names: structural, passed by the model.

    Shapes: ``x.values [B, K, V]``, ``x.mask [B, K]`` -> ``[B, num_targets]``
    """

    uses_gene_values: ClassVar[bool] = True

    def __init__(self, gene_values: list[str], bias: bool = True, *, dim: int, num_targets: int,
                 num_values: int, num_genes: int, value_names: list[str]):
        super().__init__(dim=dim, num_targets=num_targets)
        if num_values < 1:
            raise ValueError("value_linear needs at least one value column (the model resolves gene_values)")
        self.gene_values = list(gene_values)
        #: the resolved column names, in the order of ``HeadInput.values``' last axis
        self.value_names = list(value_names)
        self.linear = nn.Linear(num_values, num_targets, bias=bias)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.linear.reset_parameters()

    def forward(self, x: HeadInput) -> Tensor:
        values = x.need("values", "value_linear")
        per_gene = self.linear(values.to(x.states.dtype))  # [B, K, T]
        return (per_gene * x.mask.unsqueeze(-1).to(per_gene.dtype)).sum(1)

    def extra_repr(self) -> str:
        return f"columns={self.value_names}"
