"""Combiners (role ``combiner``): merge the local and global heads' outputs into the prediction.

``forward(local, global_, x: HeadInput) -> (pred [B, T], gate_weights [B, 2] or None)``, where ``local``
and ``global_`` are ``(pred [B, T], repr [B, dim])`` or None. Declared capabilities: ``uses_local``
(True: needs a local head, False: refuses one) and ``uses_global`` (False: no global head is built and
the model runs message passing on the wildtype only).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import Field
from torch import Tensor

from cellgi.nn.heads.base import Combiner, Head, HeadInput
from cellgi.nn.mlp import MLP
from cellgi.registry import NoParams, Params, register

__all__ = [
    "ConcatCombiner",
    "ConcatParams",
    "GateCombiner",
    "GateParams",
    "GlobalOnlyCombiner",
    "LocalOnlyCombiner",
]


class _MLPCombiner(Combiner):
    """A combiner whose parameters are one MLP, ``self.mlp``."""

    mlp: MLP

    def reset_parameters(self) -> None:
        self.mlp.reset_parameters()


class _OneHeadCombiner(Combiner):
    """A combiner that returns the prediction of the one head it declares (no parameters, no gate)."""

    def forward(
        self, local: Head | None, global_: Head | None, x: HeadInput
    ) -> tuple[Tensor, Tensor | None]:
        self._check(local, global_)
        head = global_ if self.uses_global else local
        assert head is not None
        return head[0], None


class GateParams(Params):
    num_layers: int = Field(2, ge=1, description="layers of the gate MLP")
    hidden_dim: int | None = Field(None, ge=1, description="gate MLP width (default: dim)")
    gate_input: Literal["predictions", "representations"] = Field(
        "predictions", description="what the gate reads: both heads' predictions (Dango) or their representations"
    )
    activation: str = Field("gelu", description="activation of the gate MLP")


@register("combiner", "gate", params=GateParams,
          summary="learned per-sample softmax weights over the local and global predictions")
class GateCombiner(_MLPCombiner):
    r"""Gated mixture of the two heads, as in lazy Dango.

    .. math::
        (g_l, g_g) = \mathrm{softmax}\big(\mathrm{MLP}([\hat{y}_l \,\|\, \hat{y}_g])\big), \qquad
        \hat{y} = g_l\,\hat{y}_l + g_g\,\hat{y}_g

    (the MLP reads the representations instead when ``gate_input: representations``). ``gate_weights``
    columns are ``(local, global)``.

    Args:
        num_layers: gate MLP depth (default 2).
        hidden_dim: gate MLP width (default ``dim``).
        gate_input: ``predictions`` (default) or ``representations``.
        activation: gate MLP activation.
        dim, num_targets: from the model.

    Shapes: ``local``/``global_`` ``(pred [B, T], repr [B, dim])`` -> ``(pred [B, T], gate_weights [B, 2])``
    """

    uses_local: ClassVar[bool] = True

    def __init__(
        self,
        num_layers: int = 2,
        hidden_dim: int | None = None,
        gate_input: str = "predictions",
        activation: str = "gelu",
        *,
        dim: int,
        num_targets: int,
    ):
        super().__init__(dim=dim, num_targets=num_targets)
        if gate_input not in ("predictions", "representations"):
            raise ValueError(f"gate_input must be 'predictions' or 'representations', got {gate_input!r}")
        self.gate_input = gate_input
        in_dim = 2 * (num_targets if gate_input == "predictions" else dim)
        self.mlp = MLP(in_dim, hidden_dim or dim, 2, num_layers, activation=activation)

    def forward(
        self, local: Head | None, global_: Head | None, x: HeadInput
    ) -> tuple[Tensor, Tensor | None]:
        local, global_ = self._both(local, global_)
        i = 0 if self.gate_input == "predictions" else 1
        w = torch.softmax(self.mlp(torch.cat([local[i], global_[i]], dim=-1)), dim=-1)  # [B, 2]
        return w[:, :1] * local[0] + w[:, 1:] * global_[0], w

    def extra_repr(self) -> str:
        return f"gate_input={self.gate_input}"


class ConcatParams(Params):
    num_layers: int = Field(2, ge=1, description="layers of the MLP on [local repr, global repr]")
    hidden_dim: int | None = Field(None, ge=1, description="MLP width (default: dim)")
    activation: str = Field("gelu", description="activation")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout after hidden activations")


@register("combiner", "concat", params=ConcatParams, summary="MLP on the concatenated local and global representations")
class ConcatCombiner(_MLPCombiner):
    r"""Joint readout: :math:`\hat{y} = \mathrm{MLP}([\mathbf{r}_l \,\|\, \mathbf{r}_g])`; no gate weights.

    Shapes: ``(pred, repr [B, dim])`` twice -> ``(pred [B, T], None)``
    """

    uses_local: ClassVar[bool] = True

    def __init__(
        self,
        num_layers: int = 2,
        hidden_dim: int | None = None,
        activation: str = "gelu",
        dropout: float = 0.0,
        *,
        dim: int,
        num_targets: int,
    ):
        super().__init__(dim=dim, num_targets=num_targets)
        self.mlp = MLP(2 * dim, hidden_dim or dim, num_targets, num_layers, activation=activation, dropout=dropout)

    def forward(
        self, local: Head | None, global_: Head | None, x: HeadInput
    ) -> tuple[Tensor, Tensor | None]:
        local, global_ = self._both(local, global_)
        return self.mlp(torch.cat([local[1], global_[1]], dim=-1)), None


@register("combiner", "global_only", params=NoParams,
          summary="the global prediction alone (requires local_predictor: null)")
class GlobalOnlyCombiner(_OneHeadCombiner):
    """Returns the global head's prediction. Refuses a local head: configure ``local_predictor: null``
    (a local head that is built, run and never used would be silent dead weight).

    Shapes: ``(None, (pred [B, T], repr))`` -> ``(pred [B, T], None)``
    """

    uses_local: ClassVar[bool] = False


@register("combiner", "local_only", params=NoParams,
          summary="the local prediction alone; the model then runs message passing on the wildtype only (fast)")
class LocalOnlyCombiner(_OneHeadCombiner):
    """Returns the local head's prediction. With it the model computes only the wildtype gene states (one
    column instead of ``B + 1``), builds no pooling or global head, and reads the deleted genes' wildtype
    states, their relations and the additive term: the cheap choice when what matters is how the deleted
    genes relate (e.g. genes never screened), not how the rest of the cell reacts.

    Shapes: ``((pred [B, T], repr), None)`` -> ``(pred [B, T], None)``
    """

    uses_global: ClassVar[bool] = False
