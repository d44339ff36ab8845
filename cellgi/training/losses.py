"""Training losses (role ``loss``): ``loss(pred, target, weight=None) -> scalar``.

Every loss takes predictions and targets of shape ``[B, T]`` and optional per-sample weights ``[B]``;
targets may hold NaN where a sample lacks a measurement of that target, and those entries are left out.
"""

from __future__ import annotations

import math

import torch
from pydantic import Field
from torch import Tensor, nn

from cellgi.registry import NoParams, Params, register

__all__ = ["HuberLoss", "LogCoshLoss", "MAELoss", "MSELoss", "WeightedLoss"]


class WeightedLoss(nn.Module):
    """Base of the ``loss`` role: elementwise loss, NaN targets masked, weighted mean over samples."""

    def elementwise(self, diff: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, pred: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
        if pred.shape != target.shape:
            raise ValueError(f"prediction shape {tuple(pred.shape)} != target shape {tuple(target.shape)}")
        valid = ~torch.isnan(target)
        diff = torch.where(valid, pred - target, torch.zeros_like(pred))
        per = self.elementwise(diff) * valid
        w = valid.to(pred.dtype)
        if weight is not None:
            w = w * weight.to(pred.dtype).reshape(-1, *([1] * (pred.dim() - 1)))
        denom = w.sum().clamp_min(torch.finfo(pred.dtype).tiny)
        return (per * w).sum() / denom

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


@register("loss", "logcosh", summary="log(cosh(pred - target)): MSE near 0, MAE in the tails", params=NoParams)
class LogCoshLoss(WeightedLoss):
    def elementwise(self, diff: Tensor) -> Tensor:
        # numerically stable: log(cosh(x)) = |x| + log1p(exp(-2|x|)) - log(2)
        a = diff.abs()
        return a + torch.log1p(torch.exp(-2.0 * a)) - math.log(2.0)


@register("loss", "mse", summary="mean squared error", params=NoParams)
class MSELoss(WeightedLoss):
    def elementwise(self, diff: Tensor) -> Tensor:
        return diff.square()


@register("loss", "mae", summary="mean absolute error", params=NoParams)
class MAELoss(WeightedLoss):
    def elementwise(self, diff: Tensor) -> Tensor:
        return diff.abs()


class HuberParams(Params):
    delta: float = Field(1.0, gt=0, description="switch from quadratic to linear at |diff| = delta")


@register("loss", "huber", summary="Huber loss: quadratic below delta, linear above", params=HuberParams)
class HuberLoss(WeightedLoss):
    def __init__(self, delta: float = 1.0):
        super().__init__()
        self.delta = delta

    def elementwise(self, diff: Tensor) -> Tensor:
        a = diff.abs()
        return torch.where(a < self.delta, 0.5 * diff.square(), self.delta * (a - 0.5 * self.delta))

    def __repr__(self) -> str:
        return f"HuberLoss(delta={self.delta})"
