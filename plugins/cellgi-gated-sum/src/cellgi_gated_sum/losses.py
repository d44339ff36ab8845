"""Quantile (pinball) loss, role ``loss``.

A model trained with the pinball loss for quantile ``tau`` predicts the ``tau``-quantile of the target
given the input instead of its mean: ``tau = 0.9`` gives an upper band for interaction scores, two runs
at 0.1 and 0.9 an 80 % prediction interval. ``tau = 0.5`` is half the mean absolute error.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor

from cellgi.registry import Params, register
from cellgi.training.losses import WeightedLoss

__all__ = ["QuantileLoss", "QuantileParams"]


class QuantileParams(Params):
    """Parameters of the ``quantile`` loss."""

    quantile: float = Field(
        0.5,
        gt=0.0,
        lt=1.0,
        description="target quantile tau in (0, 1): under-prediction costs tau per unit, "
        "over-prediction 1 - tau",
    )


@register(
    "loss",
    "quantile",
    summary="pinball loss: fits the tau-quantile of the target instead of its mean",
    params=QuantileParams,
)
class QuantileLoss(WeightedLoss):
    r"""Pinball loss ``rho_tau(y - y_hat)`` (Koenker & Bassett 1978, *Regression quantiles*).

    .. math::
        \rho_\tau(r) = \max(\tau r, (\tau - 1) r), \qquad r = y - \hat y

    NaN targets are left out and per-sample weights give a weighted mean, as for every cellgi loss
    (:class:`cellgi.training.losses.WeightedLoss`).

    Args:
        quantile: ``tau`` in (0, 1), default 0.5.

    Shapes:
        pred, target ``[B, T]``; weight ``[B]`` or ``None`` -> scalar.
    """

    def __init__(self, quantile: float = 0.5):
        super().__init__()
        if not 0.0 < quantile < 1.0:
            raise ValueError(f"quantile must lie in (0, 1), got {quantile}")
        self.quantile = float(quantile)

    def elementwise(self, diff: Tensor) -> Tensor:
        """``diff = pred - target``; over-prediction (diff > 0) costs ``1 - tau``, under-prediction ``tau``."""
        return torch.where(diff > 0, (1.0 - self.quantile) * diff, -self.quantile * diff)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(quantile={self.quantile})"
