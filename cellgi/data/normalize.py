"""Per-target normalisation fitted on the training split only, with its inverse for reporting."""

from __future__ import annotations

from typing import Any, Literal, Sequence

import torch
from torch import Tensor

__all__ = ["TargetNormalizer"]


class TargetNormalizer:
    """``(y - mean) / std`` per target (``zscore``) or the identity (``none``).

    NaN targets stay NaN. A target with no finite training value, or zero spread, keeps mean 0 /
    std 1 for that column and is listed in :attr:`warnings`.

    Args:
        kind: ``zscore`` or ``none``.
        mean, std: ``[T]`` statistics (set by :meth:`fit`).
        target_names: names, for messages.
    """

    def __init__(
        self,
        kind: Literal["zscore", "none"] = "zscore",
        mean: Tensor | Sequence[float] | None = None,
        std: Tensor | Sequence[float] | None = None,
        target_names: Sequence[str] = (),
    ):
        if kind not in ("zscore", "none"):
            raise ValueError(f"unknown normalisation {kind!r} (zscore, none)")
        self.kind = kind
        self.target_names = list(target_names)
        self.mean = None if mean is None else torch.as_tensor(mean, dtype=torch.float32)
        self.std = None if std is None else torch.as_tensor(std, dtype=torch.float32)
        self.warnings: list[str] = []

    @property
    def fitted(self) -> bool:
        return self.mean is not None

    def fit(self, y: Tensor) -> "TargetNormalizer":
        """Fit on ``[S, T]`` training targets (NaN ignored)."""
        y = torch.as_tensor(y, dtype=torch.float64)
        if y.dim() == 1:
            y = y.unsqueeze(1)
        t = y.shape[1]
        names = self.target_names or [f"target{j}" for j in range(t)]
        mean = torch.zeros(t, dtype=torch.float64)
        std = torch.ones(t, dtype=torch.float64)
        self.warnings = []
        if self.kind == "zscore":
            finite = torch.isfinite(y)
            n = finite.sum(0)
            for j in range(t):
                col = y[finite[:, j], j]
                if n[j] == 0:
                    self.warnings.append(f"target {names[j]!r} has no training value; left unnormalised")
                    continue
                mean[j] = col.mean()
                sd = col.std(unbiased=False) if n[j] > 1 else torch.tensor(0.0, dtype=torch.float64)
                if not float(sd) > 0:
                    self.warnings.append(f"target {names[j]!r} has zero spread in training; std set to 1")
                else:
                    std[j] = sd
        self.mean, self.std = mean.to(torch.float32), std.to(torch.float32)
        return self

    def _check(self) -> None:
        if self.mean is None or self.std is None:
            raise RuntimeError("TargetNormalizer is not fitted (call fit on the training targets)")

    def transform(self, y: Tensor) -> Tensor:
        """Normalise ``[..., T]`` targets."""
        self._check()
        return (y - self.mean.to(y.device, y.dtype)) / self.std.to(y.device, y.dtype)  # type: ignore[union-attr]

    def inverse(self, y: Tensor) -> Tensor:
        """Back to the original units (for predictions and reports)."""
        self._check()
        return y * self.std.to(y.device, y.dtype) + self.mean.to(y.device, y.dtype)  # type: ignore[union-attr]

    __call__ = transform

    def state_dict(self) -> dict[str, Any]:
        """``{kind, mean, std, target_names}`` (tensors and strings only)."""
        self._check()
        return {"kind": self.kind, "mean": self.mean, "std": self.std, "target_names": list(self.target_names)}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> "TargetNormalizer":
        return cls(state["kind"], state["mean"], state["std"], state.get("target_names", ()))

    def __repr__(self) -> str:
        if not self.fitted:
            return f"TargetNormalizer({self.kind}, unfitted)"
        return f"TargetNormalizer({self.kind}, mean={self.mean.tolist()}, std={self.std.tolist()})"  # type: ignore[union-attr]
