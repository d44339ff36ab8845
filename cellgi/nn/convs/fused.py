"""One layer's per-edge-type convs run together: the fused path of the model's message passing.

A layer holds ``G`` convs of the same kind, one per edge type, each with its own weights but the same
shapes. Run one after the other they cost ``G`` sparse products, ``G`` masked copies of the input and ``G``
small MLPs per layer; fused (:func:`layer_outputs`), the input is masked once, one sparse product against
the stacked adjacency (:class:`~cellgi.nn.operator.StackedOperator`) gives every type's neighbour sums, the
``G`` MLPs run as batched products over the edge-type axis (weights stacked at forward time, so the state
dict is that of the unfused model), and the aggregator receives the stacked ``[G, N, B, H]`` outputs
(:meth:`~cellgi.nn.aggregators.GraphAggregator.forward_stacked`) instead of a list it would stack again.

The result equals the unfused path up to float rounding (tests/nn/test_fused.py checks outputs and
gradients for every registered aggregator). A conv kind takes part by declaring ``supports_fused`` (see
:class:`~cellgi.nn.convs.base.MaskedConv`); a layer whose convs cannot fuse (another kind, differing
settings, a plugin conv without the capability) runs unfused, silently and exactly as before.
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor

from cellgi.nn.convs.wrapper import ConvWrapper
from cellgi.nn.operator import GraphOperator, StackedOperator
from cellgi.registry import ROLES

__all__ = ["StackedOperatorCache", "can_fuse", "layer_outputs"]


def can_fuse(wrappers: Sequence[ConvWrapper]) -> bool:
    """Whether the convs of one layer (wrapped, one per edge type) can run fused."""
    convs = [w.conv for w in wrappers]
    kind = type(convs[0])
    return (
        len(convs) > 0
        and all(type(c) is kind for c in convs)
        and ROLES["conv"].contract.declares(kind, "supports_fused")  # as declared (checked at registration)
        and kind.can_fuse(convs)
        and ConvWrapper.can_fuse_post(list(wrappers))
    )


class StackedOperatorCache:
    """The stacked adjacency of a model's operators, built on first use and again after a device move."""

    def __init__(self) -> None:
        self._stacked: StackedOperator | None = None

    def __deepcopy__(self, memo: dict) -> "StackedOperatorCache":
        return StackedOperatorCache()  # a copy of a model rebuilds its stacked adjacency on first use

    def get(self, operators: Sequence[GraphOperator]) -> StackedOperator:
        device = operators[0].edge_index.device
        if self._stacked is None or self._stacked.device != device:
            self._stacked = None  # free the old device's copy first
            self._stacked = StackedOperator(list(operators))
        return self._stacked


def layer_outputs(
    wrappers: Sequence[ConvWrapper], operators: Sequence[GraphOperator], x: Tensor, keep: Tensor,
    cache: StackedOperatorCache,
) -> Tensor:
    """The ``G`` wrapped convs of one layer on ``x [N, B, H]`` -> stacked outputs ``[G, N, B, H]``
    (check :func:`can_fuse` first)."""
    n, b, _ = x.shape
    convs = [w.conv for w in wrappers]
    h = type(convs[0]).forward_fused(convs, x, cache.get(operators), keep)  # [G, N*B, H]
    out = ConvWrapper.post_fused(list(wrappers), h, x.reshape(1, n * b, -1))
    return out.view(len(convs), n, b, out.shape[-1])
