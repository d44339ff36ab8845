"""Poolings (role ``pooling``): one vector per (perturbed) cell from its kept genes' states.

A member is built with keyword-only ``dim`` and maps ``h [N, B, dim]`` and ``keep [N, B]`` (bool) to
``[B, dim]``; sample ``b`` pools only the genes with ``keep[:, b]`` (its deleted genes are left out), so
its vector never depends on other samples or on deleted genes' states.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor, nn

from cellgi.nn.mlp import MLP, masked_fill_min
from cellgi.registry import NoParams, Params, register

__all__ = ["AttentionalPooling", "MeanPooling", "Pooling"]


class Pooling(nn.Module):
    """Base of the ``pooling`` role (see the module docstring)."""

    dim: int

    def __init__(self, *, dim: int):
        super().__init__()
        self.dim = dim

    def reset_parameters(self) -> None:
        pass

    def forward(self, h: Tensor, keep: Tensor) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class AttentionalParams(Params):
    gate_num_layers: int = Field(2, ge=1, description="linear layers of the gate MLP (dim -> 1)")
    gate_hidden_dim: int | None = Field(None, ge=1, description="gate MLP hidden size (default: dim)")
    transform: bool = Field(True, description="apply an MLP (dim -> dim) to the states before weighting")
    transform_num_layers: int = Field(2, ge=1, description="linear layers of the transform MLP")
    activation: str = Field("gelu", description="activation of both MLPs")


@register("pooling", "attentional", params=AttentionalParams,
          summary="gated softmax attention over each sample's kept genes (PyG AttentionalAggregation, masked)")
class AttentionalPooling(Pooling):
    r"""Global soft attention pooling of Li et al., "Gated Graph Sequence Neural Networks" (ICLR 2016),
    as PyG's ``AttentionalAggregation``, restricted to each sample's kept genes.

    .. math::
        \mathbf{z}_b = \sum_{i:\,k_{ib}} \mathrm{softmax}_{i:\,k_{ib}}\big(h_{\mathrm{gate}}(\mathbf{x}_{ib})\big)
        \, h_{\mathbf{\Theta}}(\mathbf{x}_{ib})

    Args:
        gate_num_layers: gate MLP depth (default 2).
        gate_hidden_dim: gate MLP width (default ``dim``).
        transform: use :math:`h_\Theta` (an MLP), else the identity (default True).
        transform_num_layers: depth of :math:`h_\Theta` (default 2).
        activation: activation of both MLPs (default ``gelu``).
        dim: from the model.

    Shapes: ``h [N, B, dim]``, ``keep [N, B]`` -> ``[B, dim]``
    """

    def __init__(
        self,
        gate_num_layers: int = 2,
        gate_hidden_dim: int | None = None,
        transform: bool = True,
        transform_num_layers: int = 2,
        activation: str = "gelu",
        *,
        dim: int,
    ):
        super().__init__(dim=dim)
        self.gate = MLP(dim, gate_hidden_dim or dim, 1, gate_num_layers, activation=activation)
        self.nn = MLP(dim, dim, dim, transform_num_layers, activation=activation) if transform else None

    def reset_parameters(self) -> None:
        self.gate.reset_parameters()
        if self.nn is not None:
            self.nn.reset_parameters()

    def forward(self, h: Tensor, keep: Tensor) -> Tensor:
        score = masked_fill_min(self.gate(h).squeeze(-1), keep)  # [N, B]
        alpha = torch.softmax(score, dim=0) * keep.to(h.dtype)
        feats = self.nn(h) if self.nn is not None else h
        return torch.einsum("nb,nbh->bh", alpha, feats)


@register("pooling", "mean", summary="mean of each sample's kept genes' states", params=NoParams)
class MeanPooling(Pooling):
    r"""Mean over kept genes: :math:`\mathbf{z}_b = \frac{1}{|\{i: k_{ib}\}|}\sum_{i:\,k_{ib}} \mathbf{x}_{ib}`.

    Shapes: ``h [N, B, dim]``, ``keep [N, B]`` -> ``[B, dim]``
    """

    def forward(self, h: Tensor, keep: Tensor) -> Tensor:
        k = keep.to(h.dtype)
        return torch.einsum("nb,nbh->bh", k, h) / k.sum(0).clamp_min(1.0).unsqueeze(-1)
