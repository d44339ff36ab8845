"""The per-edge-type wrapper around a conv: projection, per-node norm, activation, dropout, residual."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cellgi.nn.convs.base import MaskedConv
from cellgi.nn.mlp import fused_norm, make_activation, make_norm, norms_fusable, stacked_linear
from cellgi.nn.operator import GraphOperator, RemovedEdges

__all__ = ["ConvWrapper"]


class ConvWrapper(nn.Module):
    r"""One conv applied to one edge type, followed by the per-layer post-processing.

    .. math::
        \mathbf{h} = \mathrm{Dropout}\big(\sigma(\mathrm{Norm}(\mathbf{P}\,\mathrm{conv}(\mathbf{x})))\big)
        + \mathbf{x}

    where :math:`\mathbf{P}` is an optional linear projection and the residual is optional. The norm is
    per node (LayerNorm, RMSNorm or none): it never mixes genes or samples.

    Args:
        conv: the conv (``in_dim == out_dim == dim`` when ``residual``).
        dim: feature size.
        projection: apply a linear projection after the conv.
        norm: ``layer``, ``rms`` or ``none``.
        activation: activation name (PyG resolver).
        dropout: dropout probability.
        residual: add the input.

    Shapes:
        same as the conv's two entry points.
    """

    def __init__(
        self,
        conv: MaskedConv,
        dim: int,
        projection: bool = False,
        norm: str = "layer",
        activation: str = "gelu",
        dropout: float = 0.0,
        residual: bool = True,
    ):
        super().__init__()
        self.conv = conv
        self.proj = nn.Linear(dim, dim) if projection else None
        self.norm = make_norm(norm, dim)
        self.act = make_activation(activation)
        self.drop = nn.Dropout(dropout) if dropout > 0 else None
        self.residual = residual

    def reset_parameters(self) -> None:
        self.conv.reset_parameters()
        for m in (self.proj, self.norm):
            if m is not None and hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def _post(self, h: Tensor, x: Tensor | None) -> Tensor:
        if self.proj is not None:
            h = self.proj(h)
        h = self.act(self.norm(h))
        if self.drop is not None:
            h = self.drop(h)
        return h + x if self.residual else h

    def forward(self, x: Tensor, edge_index: Tensor, edge_mask: Tensor | None = None) -> Tensor:
        return self._post(self.conv(x, edge_index, edge_mask), x)

    def forward_batched(self, x: Tensor, adj: GraphOperator, keep: Tensor) -> Tensor:
        return self._post(self.conv.forward_batched(x, adj, keep), x)

    def forward_masked(self, x: Tensor, src: Tensor, adj: GraphOperator) -> Tensor:
        """:meth:`forward_batched` given the layer's ``masked_input(x, keep)`` (convs declaring
        ``supports_masked_input``)."""
        return self._post(self.conv.forward_masked(x, src, adj), x)

    def uses_dropout(self) -> bool:
        """Whether the conv or this wrapper's dropout makes training-mode outputs random."""
        return self.conv.uses_dropout() or (self.drop is not None and self.drop.p > 0)

    @staticmethod
    def can_fuse_post(wrappers: list["ConvWrapper"]) -> bool:
        """Whether :meth:`post_fused` can run these wrappers' post-processing together."""
        first = wrappers[0]
        return (
            all((w.proj is None) == (first.proj is None) and w.residual == first.residual for w in wrappers)
            and norms_fusable([w.norm for w in wrappers])
            and all(repr(w.act) == repr(first.act) and next(w.act.parameters(), None) is None for w in wrappers)
            and all((w.drop.p if w.drop is not None else 0.0) == (first.drop.p if first.drop is not None else 0.0)
                    for w in wrappers)
        )

    @staticmethod
    def post_fused(wrappers: list["ConvWrapper"], h: Tensor, x: Tensor | None) -> Tensor:
        """``_post`` of ``G`` wrappers on stacked conv outputs ``h [G, M, dim]`` (``x [M, dim]``, the
        layer input, for the residual) -> ``[G, M, dim]``."""
        first = wrappers[0]
        if first.proj is not None:
            h = stacked_linear([w.proj for w in wrappers], h)
        h = first.act(fused_norm([w.norm for w in wrappers], h))
        if first.drop is not None:
            h = first.drop(h)
        return h + x if first.residual else h

    def forward_shared(self, x: Tensor, adj: GraphOperator, removed: RemovedEdges) -> Tensor:
        """``[N + R, dim]``: the wildtype rows, then the rows of ``removed``'s affected pairs."""
        out, out_removed = self.conv.forward_shared(x, adj, removed)
        skip = torch.cat([x, x.index_select(0, removed.rows)]) if self.residual else None
        return self._post(torch.cat([out, out_removed]), skip)
