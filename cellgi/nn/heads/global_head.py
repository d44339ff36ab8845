"""Global heads (role ``global_predictor``): predict from the pooled cell states.

A member reads ``x.z_w [1, dim]`` (the wildtype cell), ``x.z_i [B, dim]`` (the perturbed cells) and
``x.z_p = z_w - z_i`` of a :class:`~cellgi.nn.heads.base.HeadInput` (:meth:`HeadInput.pooled`).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn

from cellgi.nn.heads.base import GlobalPredictor, Head, HeadInput
from cellgi.nn.mlp import MLP, NormName
from cellgi.registry import Params, register

__all__ = ["MLPGlobalParams", "MLPGlobalPredictor"]


#: the pooled vectors the MLP can read
PooledName = Literal["z_p", "z_w", "z_i"]


def _default_inputs() -> list[PooledName]:
    return ["z_p"]


class MLPGlobalParams(Params):
    num_layers: int = Field(2, ge=1, description="linear layers (the last maps to the targets)")
    hidden_dim: int | None = Field(None, ge=1, description="hidden width (default: dim)")
    inputs: list[PooledName] = Field(
        default_factory=_default_inputs, min_length=1, description="pooled vectors fed to the MLP, concatenated"
    )
    norm: NormName = Field("layer", description="per-sample norm after hidden layers (layer, rms, none)")
    activation: str = Field("gelu", description="activation")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout after hidden activations")


@register("global_predictor", "mlp", params=MLPGlobalParams,
          summary="MLP on the perturbation difference z_p = z_w - z_i (optionally also z_w, z_i)")
class MLPGlobalPredictor(GlobalPredictor):
    r"""Global head: an MLP on the pooled cell states.

    .. math::
        \mathbf{r} = \mathrm{MLP}([\mathbf{z}_p \,\|\, \dots]) \in \mathbb{R}^{dim},\qquad
        \hat{y} = \mathbf{W}\mathbf{r} + \mathbf{b}

    with :math:`\mathbf{z}_p = \mathbf{z}_w - \mathbf{z}_i` (wildtype minus perturbed cell), optionally
    concatenated with :math:`\mathbf{z}_w` (broadcast) and :math:`\mathbf{z}_i` (``inputs``).

    Args:
        num_layers: depth, counting the output layer (default 2). With 1, the prediction is linear in the
            inputs and ``repr`` is the single input (or a linear map of several concatenated to ``dim``).
        hidden_dim: hidden width (default ``dim``).
        inputs: which of ``z_p``, ``z_w``, ``z_i`` to concatenate (default ``[z_p]``).
        norm: per-sample norm of hidden layers (default ``layer``).
        activation, dropout: of hidden layers.
        dim, num_targets: from the model.

    Shapes: ``x.z_w [1, dim]``, ``x.z_i [B, dim]``, ``x.z_p [B, dim]`` -> ``(pred [B, T], repr [B, dim])``
    """

    def __init__(
        self,
        num_layers: int = 2,
        hidden_dim: int | None = None,
        inputs: list[str] | None = None,
        norm: str = "layer",
        activation: str = "gelu",
        dropout: float = 0.0,
        *,
        dim: int,
        num_targets: int,
    ):
        super().__init__(dim=dim, num_targets=num_targets)
        self.inputs = list(inputs or ["z_p"])
        bad = [i for i in self.inputs if i not in ("z_p", "z_w", "z_i")]
        if bad or len(set(self.inputs)) != len(self.inputs):
            raise ValueError(f"global mlp: inputs must be distinct names among z_p, z_w, z_i, got {self.inputs}")
        in_dim = dim * len(self.inputs)
        if num_layers > 1:
            # hidden layers end at width dim, so that repr is [B, dim] for every configuration
            self.body: nn.Module = MLP(
                in_dim, hidden_dim or dim, dim, num_layers - 1, norm, activation, dropout, plain_last=False
            )
        elif in_dim == dim:
            self.body = nn.Identity()
        else:
            self.body = nn.Linear(in_dim, dim)
        self.out = nn.Linear(dim, num_targets)

    def reset_parameters(self) -> None:
        if hasattr(self.body, "reset_parameters"):
            self.body.reset_parameters()
        self.out.reset_parameters()

    def forward(self, x: HeadInput) -> Head:
        z_w, z_i, z_p = x.pooled("global mlp")
        parts = {"z_p": z_p, "z_i": z_i, "z_w": z_w.expand_as(z_p)}
        h = parts[self.inputs[0]] if len(self.inputs) == 1 else torch.cat([parts[i] for i in self.inputs], -1)
        rep = self.body(h)
        return self.out(rep), rep

    def extra_repr(self) -> str:
        return f"inputs={self.inputs}"


