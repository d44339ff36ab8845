"""Gene-mean baseline, role ``baseline``.

The simplest per-gene reference a screen allows: each gene's mean score over the training samples that
delete it, shrunk towards the overall mean, averaged over the genes of a set. Unlike cellgi's additive
ridge it needs no solve and its per-gene values read directly as "how this gene's interactions tend to
go"; a gene without training samples contributes the overall mean. Listed in a spec's
``training.baselines`` it is fitted on every run's training split, reported as
``baseline_gene_mean.*`` in ``metrics.json`` and can join the network in ``training.stack``.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch import Tensor

from cellgi.registry import Params, register
from cellgi.baselines import Baseline, BaselineContext, BaselineData

__all__ = ["GeneMeanBaseline", "GeneMeanParams"]


class GeneMeanParams(Params):
    """Parameters of the ``gene_mean`` baseline."""

    shrinkage: float = Field(
        5.0, ge=0.0,
        description="pseudo-samples at the overall mean added to each gene's samples (0: the raw gene mean)",
    )


@register(
    "baseline",
    "gene_mean",
    summary="mean training score of each deleted gene (shrunk to the overall mean), averaged over the set",
    params=GeneMeanParams,
)
class GeneMeanBaseline(Baseline):
    r"""Per target, gene ``g`` with training scores :math:`y_1..y_n` (samples deleting ``g``) gets
    :math:`m_g = (\sum_i w_i y_i + k \bar y) / (\sum_i w_i + k)`, with :math:`\bar y` the weighted
    training mean and ``k`` = ``shrinkage``; a set predicts the mean of its genes' :math:`m_g`.

    Args:
        shrinkage: ``k`` above (default 5).
        context: the run's :class:`~cellgi.baselines.BaselineContext` (keyword, from cellgi).
    """

    kind = "gene_mean"

    def __init__(self, shrinkage: float = 5.0, *, context: BaselineContext):
        super().__init__(context=context)
        self.shrinkage = float(shrinkage)
        self.gene_means: Tensor | None = None  # [N, T] float64

    def fit(self, data: BaselineData) -> dict[str, Any]:
        tr = data.splits["train"]
        padded, mask = data.sets(tr)
        y = data.y[tr].to(torch.float64)  # [S, T], NaN = not measured
        w = data.dataset.weight[tr].to(torch.float64).unsqueeze(1) * (~torch.isnan(y))
        yw = torch.nan_to_num(y) * w
        overall = yw.sum(0) / w.sum(0).clamp_min(1e-12)
        n = self.context.graph.num_nodes
        genes = padded[mask]  # every (sample, deleted gene)
        rows = mask.nonzero()[:, 0]
        sw = torch.zeros(n, y.shape[1], dtype=torch.float64).index_add_(0, genes, w[rows])
        swy = torch.zeros(n, y.shape[1], dtype=torch.float64).index_add_(0, genes, yw[rows])
        self.gene_means = (swy + self.shrinkage * overall) / (sw + self.shrinkage).clamp_min(1e-12)
        self.gene_means[sw == 0] = overall.expand(n, -1)[sw == 0]  # no samples: the overall mean
        return {"genes_with_samples": int((sw.sum(1) > 0).sum())}

    def predict(self, padded: Tensor, mask: Tensor) -> Tensor:
        if self.gene_means is None:
            raise RuntimeError("gene_mean: not fitted")
        m = mask.cpu().to(torch.float64).unsqueeze(-1)
        vals = self.gene_means[padded.cpu().to(torch.long)] * m  # [S, K, T]
        # summed in sorted order: the same bits for every order of a set's genes
        return vals.sort(dim=1).values.sum(1) / m.sum(1).clamp_min(1.0)

    def state_dict(self) -> dict[str, Any]:
        if self.gene_means is None:
            raise RuntimeError("gene_mean: not fitted")
        return {"gene_means": self.gene_means.clone(), "shrinkage": self.shrinkage}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        means = torch.as_tensor(state["gene_means"], dtype=torch.float64)
        if means.shape[0] != self.context.graph.num_nodes:
            raise ValueError(f"gene_mean was fitted on {means.shape[0]} genes, this run has "
                             f"{self.context.graph.num_nodes}")
        self.gene_means = means

    def __repr__(self) -> str:
        return f"GeneMeanBaseline(shrinkage={self.shrinkage})"
