"""What a member of the ``conv`` role must provide."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn

from cellgi.nn.operator import GraphOperator

__all__ = ["MaskedConv", "dropout_active", "masked_input"]


def masked_input(x: Tensor, keep: Tensor) -> Tensor:
    """``[N, B*H]``: ``x [N, B, H]`` with the deleted (gene, column) rows zeroed (``keep [N, B]`` False),
    the source side of a masked sum over the shared adjacency. The same for every edge type of a layer,
    so the model makes it once per layer for the convs that take it (``supports_masked_input``)."""
    n, b, h = x.shape
    return (x * keep.unsqueeze(-1).to(x.dtype)).reshape(n, b * h)


def dropout_active(module: nn.Module) -> bool:
    """Whether any ``nn.Dropout``-like submodule of ``module`` drops with ``p > 0``."""
    return any(isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0 for m in module.modules())


class MaskedConv(nn.Module):
    """Base of the ``conv`` role: message passing over one gene graph, for one graph or a whole batch.

    A member is built with keyword-only ``in_dim`` and ``out_dim`` (passed by the model) plus its params,
    and provides two entry points that must agree on every *kept* gene:

    - :meth:`forward` ``(x [N, in_dim], edge_index [2, E], edge_mask [E] bool or None) -> [N, out_dim]``:
      the PyG-style single-graph call. ``edge_mask`` False removes an edge (it must behave exactly as if
      the edge were not in ``edge_index``).
    - :meth:`forward_batched` ``(x [N, B, in_dim], adj: GraphOperator, keep [N, B] bool) -> [N, B, out_dim]``:
      all ``B`` samples at once over the shared adjacency. Sample ``b`` sees the graph with every edge
      touching a gene ``n`` with ``keep[n, b] == False`` removed. Outputs at deleted genes are unspecified
      (they are never read downstream), but must be finite.

    Members must not mix genes or samples except through the graph's edges (no batch or graph norms).

    A member may also provide, for the model's first layer (where every column's input is the same):

    - ``forward_shared(x [N, in_dim], adj: GraphOperator, removed: RemovedEdges) -> (out [N, out_dim],
      out_removed [R, out_dim])``: the wildtype output, and the output at each affected (gene, column) pair
      of ``removed`` (that gene's in-edges from the listed deleted sources gone). It must equal
      :meth:`forward_batched` at those pairs; every other pair equals the wildtype. Without it the model
      runs its first layer through :meth:`forward_batched` like the others. A member providing it
      declares ``supports_shared = True`` (checked when it registers; the model reads the flag).

    Capabilities are declared, not guessed (the role's contract in :mod:`cellgi.registry.roles` checks
    them at registration; :mod:`cellgi.testing` checks the behaviour):

    - ``supports_shared``: provides ``forward_shared`` (default False);
    - ``supports_fused``: provides the class methods ``can_fuse(convs) -> bool`` and
      ``forward_fused(convs, x [N, B, in_dim], adj: StackedOperator, keep) -> [G, N*B, out_dim]``, the
      ``G`` per-edge-type convs of one layer (one instance per type, same settings) run together: equal
      to stacking their :meth:`forward_batched` outputs, up to float rounding (default False; see
      ``cellgi.nn.convs.fused``);
    - ``supports_masked_input``: provides ``forward_masked(x [N, B, in_dim], src [N, B*in_dim], adj) ->
      [N, B, out_dim]``, :meth:`forward_batched` given the layer's :func:`masked_input` already made
      (``src = masked_input(x, keep)``, shared by every edge type of the layer: made once, not once per
      type); it must equal ``forward_batched(x, adj, keep)`` (default False);
    - ``row_independent``: no mixing of genes or samples except through edges (default True);
    - :meth:`uses_dropout`: whether the member is random in training mode right now (default: an
      ``nn.Dropout`` submodule with ``p > 0``; members with functional dropout override it).
    """

    supports_shared: ClassVar[bool] = False
    supports_fused: ClassVar[bool] = False
    supports_masked_input: ClassVar[bool] = False
    row_independent: ClassVar[bool] = True

    in_dim: int
    out_dim: int

    def uses_dropout(self) -> bool:
        """Whether training-mode outputs are random (dropout with ``p > 0``)."""
        return dropout_active(self)

    def forward(self, x: Tensor, edge_index: Tensor, edge_mask: Tensor | None = None) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def forward_batched(self, x: Tensor, adj: GraphOperator, keep: Tensor) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def reset_parameters(self) -> None:  # pragma: no cover
        raise NotImplementedError
