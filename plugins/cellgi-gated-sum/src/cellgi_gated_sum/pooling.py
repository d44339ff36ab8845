"""Masked max pooling (role ``pooling``): the channel-wise maximum over each sample's kept genes."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor

from cellgi.nn.pooling import Pooling
from cellgi.registry import Params, register

__all__ = ["MaskedMaxParams", "MaskedMaxPooling"]


class MaskedMaxParams(Params):
    """Parameters of the ``masked_max`` pooling."""

    temperature: float | None = Field(
        None,
        gt=0.0,
        description="null: hard channel-wise max; t > 0: smooth max t*log(mean(exp(h/t))), which lies "
        "between the mean (large t) and the max (small t) and passes gradient to every kept gene",
    )


@register(
    "pooling",
    "masked_max",
    summary="channel-wise max (or smooth log-mean-exp max) over each sample's kept genes",
    params=MaskedMaxParams,
)
class MaskedMaxPooling(Pooling):
    r"""Max pooling over the kept genes of each sample (global max pooling, as PyG's
    ``global_max_pool``, restricted per sample by ``keep``).

    .. math::
        \mathbf{z}_b = \max_{i:\,k_{ib}} \mathbf{x}_{ib}
        \quad\text{or, with temperature } t,\quad
        \mathbf{z}_b = t \log \frac{1}{|\{i: k_{ib}\}|} \sum_{i:\,k_{ib}} e^{\mathbf{x}_{ib}/t}

    A sample without any kept gene pools to zeros.

    Args:
        temperature: ``None`` (hard max, default) or ``t > 0`` for the smooth maximum.
        dim: feature size (structural, passed by the model).

    Shapes:
        ``h [N, B, dim]``, ``keep [N, B]`` (bool) -> ``[B, dim]``
    """

    def __init__(self, temperature: float | None = None, *, dim: int):
        super().__init__(dim=dim)
        if temperature is not None and temperature <= 0:
            raise ValueError(f"masked_max: temperature must be > 0 or null, got {temperature}")
        self.temperature = None if temperature is None else float(temperature)

    def forward(self, h: Tensor, keep: Tensor) -> Tensor:
        """Pool ``h [N, B, dim]`` over the genes with ``keep [N, B]`` into ``[B, dim]``."""
        if h.dim() != 3 or keep.shape != h.shape[:2]:
            raise ValueError(
                f"masked_max: expected h [N, B, dim] and keep [N, B], got {tuple(h.shape)} and {tuple(keep.shape)}"
            )
        mask = keep.unsqueeze(-1)  # [N, B, 1]
        any_kept = keep.any(dim=0).unsqueeze(-1)  # [B, 1]
        if self.temperature is None:
            pooled = h.masked_fill(~mask, float("-inf")).amax(dim=0)
        else:
            t = self.temperature
            count = keep.sum(dim=0).clamp_min(1).to(h.dtype).unsqueeze(-1)  # [B, 1]
            lse = torch.logsumexp(h.masked_fill(~mask, float("-inf")) / t, dim=0)
            pooled = t * (lse - torch.log(count))
        return torch.where(any_kept, pooled, torch.zeros_like(pooled))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, temperature={self.temperature}"
