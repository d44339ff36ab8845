"""The ``sweep`` block of a spec: the search space and settings of ``cellgi sweep`` (ignored by training).

```yaml
sweep:
  metric: val/pearson          # default: training.checkpoint.monitor
  direction: maximize          # default: from training.checkpoint.mode (max -> maximize)
  n_trials: 20                 # the study's total of finished trials (complete or pruned)
  params:
    training.optimizer.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
    model.hidden_dim: {type: categorical, choices: [16, 32, 64]}
    model.num_layers: {type: int, low: 1, high: 3}
```

The same mapping (without the ``sweep:`` key) may live in a YAML file of its own, given to
``cellgi sweep SPEC --space FILE``. Every key of ``params`` is a dotted spec path, as in an override.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from cellgi.spec.base import StrictModel

__all__ = ["CategoricalParam", "FloatParam", "IntParam", "PrunerSpec", "SamplerSpec", "SweepParam", "SweepSpec"]

Scalar = Union[bool, int, float, str, None]


class FloatParam(StrictModel):
    """A float drawn from [low, high] (log-uniform with ``log: true``; on a grid with ``step``)."""

    type: Literal["float"]
    low: float
    high: float
    log: bool = False
    step: float | None = Field(None, gt=0, description="grid spacing (not with log)")

    @model_validator(mode="after")
    def _range(self) -> "FloatParam":
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError("a log-scale range needs low > 0")
        if self.log and self.step is not None:
            raise ValueError("step and log do not combine")
        return self


class IntParam(StrictModel):
    """An integer drawn from [low, high] (both included), every ``step``."""

    type: Literal["int"]
    low: int
    high: int
    step: int = Field(1, ge=1)
    log: bool = False

    @model_validator(mode="after")
    def _range(self) -> "IntParam":
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        if self.log and (self.low <= 0 or self.step != 1):
            raise ValueError("a log-scale integer range needs low > 0 and step 1")
        return self


class CategoricalParam(StrictModel):
    """One of ``choices`` (numbers, strings, booleans or null)."""

    type: Literal["categorical"]
    choices: list[Scalar] = Field(min_length=1)


SweepParam = Annotated[Union[FloatParam, IntParam, CategoricalParam], Field(discriminator="type")]


class PrunerSpec(StrictModel):
    """Stops unpromising trials early from their per-epoch metric (Optuna pruners)."""

    type: Literal["median", "percentile", "hyperband", "none"] = "median"
    n_startup_trials: int = Field(2, ge=0, description="trials run to the end before any is pruned (median)")
    n_warmup_steps: int = Field(1, ge=0, description="epochs of a trial before it may be pruned (median)")
    percentile: float = Field(50.0, gt=0, lt=100, description="prune below this percentile (percentile)")


class SamplerSpec(StrictModel):
    """How trials pick their values (Optuna samplers)."""

    type: Literal["tpe", "random", "grid"] = "tpe"
    seed: int | None = Field(0, ge=0, le=2**32 - 1, description="sampler seed (null: a new one each process)")


class SweepSpec(StrictModel):
    """A hyperparameter search over spec values; see :mod:`cellgi.experiments.sweep`."""

    params: dict[str, SweepParam] = Field(min_length=1, description="dotted spec path -> search range")
    metric: str | None = Field(None, description="logged metric optimised (default: training.checkpoint.monitor)")
    direction: Literal["maximize", "minimize"] | None = Field(
        None, description="default: maximize when training.checkpoint.mode is max"
    )
    n_trials: int = Field(20, ge=1, description="finished trials (complete or pruned) the study should hold")
    timeout: float | None = Field(None, gt=0, description="stop starting trials after this many seconds")
    pruner: PrunerSpec = Field(default_factory=PrunerSpec)
    sampler: SamplerSpec = Field(default_factory=SamplerSpec)

    @model_validator(mode="after")
    def _grid(self) -> "SweepSpec":
        if self.sampler.type == "grid":
            bad = [k for k, p in self.params.items() if not isinstance(p, CategoricalParam)]
            if bad:
                raise ValueError(f"sampler grid takes categorical params only (not: {', '.join(bad)})")
        return self
