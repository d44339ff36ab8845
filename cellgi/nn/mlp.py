"""Small building blocks shared by the model parts: per-node norms and a plain MLP.

Only *per-node* norms are offered (LayerNorm, RMSNorm, none): they normalise each gene state on its own
and never mix genes or samples, so a sample's output cannot depend on its batch-mates.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn
from torch_geometric.nn.resolver import activation_resolver

__all__ = ["MLP", "NORMS", "NormName", "make_activation", "make_norm", "masked_fill_min"]

NormName = Literal["layer", "rms", "none"]
NORMS: tuple[str, ...] = ("layer", "rms", "none")


def make_norm(name: str, dim: int) -> nn.Module:
    """A per-node norm over the last dimension: ``layer`` (LayerNorm), ``rms`` (RMSNorm) or ``none``."""
    if name == "layer":
        return nn.LayerNorm(dim)
    if name == "rms":
        return nn.RMSNorm(dim)
    if name == "none":
        return nn.Identity()
    raise ValueError(
        f"unknown norm {name!r} (valid: {', '.join(NORMS)}); batch and graph norms are not offered "
        f"because they mix genes and samples"
    )


def make_activation(name: str) -> nn.Module:
    """An activation module from PyG's resolver (``relu``, ``gelu``, ``silu``, ``leaky_relu``, ...)."""
    try:
        return activation_resolver(name)
    except ValueError as exc:
        raise ValueError(f"unknown activation {name!r}: {exc}") from None


class MLP(nn.Module):
    r"""Multi-layer perceptron applied to the last dimension.

    ``num_layers`` linear layers; every layer but the last is followed by norm, activation and
    dropout (``plain_last=True``, PyG's convention), or every layer when ``plain_last=False``.

    Args:
        in_dim: input size.
        hidden_dim: size of the hidden layers.
        out_dim: output size.
        num_layers: number of linear layers (>= 1).
        norm: per-node norm after each hidden layer (``layer``, ``rms``, ``none``).
        activation: activation name for :func:`make_activation`.
        dropout: dropout after each hidden activation.
        plain_last: leave the last layer without norm/activation/dropout.

    Shapes:
        input ``[..., in_dim]`` -> output ``[..., out_dim]``
    """

    def __init__(
        self,
        in_dim: int,
        hidden_dim: int,
        out_dim: int,
        num_layers: int = 2,
        norm: str = "none",
        activation: str = "gelu",
        dropout: float = 0.0,
        plain_last: bool = True,
    ):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"an MLP needs at least one layer, got num_layers={num_layers}")
        self.in_dim, self.hidden_dim, self.out_dim = in_dim, hidden_dim, out_dim
        self.num_layers, self.norm_name, self.act_name = num_layers, norm, activation
        self.dropout, self.plain_last = dropout, plain_last
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        layers: list[nn.Module] = []
        for i in range(num_layers):
            layers.append(nn.Linear(dims[i], dims[i + 1]))
            if i < num_layers - 1 or not plain_last:
                layers.append(make_norm(norm, dims[i + 1]))
                layers.append(make_activation(activation))
                if dropout > 0:
                    layers.append(nn.Dropout(dropout))
        self.layers = nn.Sequential(*layers)

    def reset_parameters(self) -> None:
        for m in self.layers:
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)

    def __repr__(self) -> str:
        return (
            f"MLP({self.in_dim}, {self.hidden_dim}, {self.out_dim}, num_layers={self.num_layers}, "
            f"norm={self.norm_name}, act={self.act_name}, dropout={self.dropout})"
        )


def masked_fill_min(x: Tensor, mask: Tensor) -> Tensor:
    """``x`` with entries where ``mask`` is False set to the dtype's most negative finite value."""
    return x.masked_fill(~mask, torch.finfo(x.dtype).min)
