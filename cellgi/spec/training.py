"""The ``training:`` section: loss, optimiser, schedule, Lightning trainer, checkpoints, early stopping,
metrics, baseline and experiment loggers."""

from __future__ import annotations

import difflib
import warnings
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import Field, field_validator, model_validator

from cellgi.metrics import DEFAULT_THRESHOLDS
from cellgi.spec.base import StrictModel, component

if TYPE_CHECKING:  # the root spec is built from this module's sections: its module imports this one
    from cellgi.spec.validation import Spec

__all__ = [
    "logged_metric_keys",
    "monitor_problems",
    "BaselineSpec",
    "BlendSpec",
    "CheckpointSpec",
    "CSVLoggerSpec",
    "EarlyStoppingSpec",
    "LoggerSpec",
    "MLflowLoggerSpec",
    "TensorBoardLoggerSpec",
    "WandbLoggerSpec",
    "MetricsSpec",
    "OptimizerSpec",
    "SchedulerSpec",
    "StackSpec",
    "TrainerSpec",
    "TrainingSpec",
]


class OptimizerSpec(StrictModel):
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-5, ge=0)
    betas: list[Annotated[float, Field(ge=0, lt=1)]] = Field(
        default_factory=lambda: [0.9, 0.999], min_length=2, max_length=2, description="AdamW's two betas, each in [0, 1)"
    )


class SchedulerSpec(StrictModel):
    kind: Literal["cosine", "constant"] = "cosine"
    warmup_fraction: float = Field(0.05, ge=0, lt=1, description="fraction of all steps spent warming up")
    min_lr_ratio: float = Field(0.01, ge=0, le=1)


class TrainerSpec(StrictModel):
    accelerator: str = Field("auto", description="cpu, gpu, auto, ... (Lightning)")
    devices: int | str | list[int] = Field(1, description="Lightning devices")
    num_nodes: int = Field(1, ge=1)
    strategy: str = Field("auto", description="auto, ddp, ddp_spawn, ... (Lightning)")
    precision: str = Field("32-true", description="32-true, bf16-mixed, 16-mixed (Lightning)")
    deterministic: bool = False


class CheckpointSpec(StrictModel):
    monitor: str = Field("val/pearson", description="metric selecting the best checkpoint")
    mode: Literal["max", "min"] = "max"
    every_n_epochs: int = Field(1, ge=1)


class EarlyStoppingSpec(StrictModel):
    monitor: str = Field("val/pearson", description="logged metric watched (val/pearson, val/loss, ...)")
    patience: int = Field(5, ge=1, description="epochs without improvement before stopping")
    mode: Literal["max", "min"] = "max"
    min_delta: float = Field(0.0, ge=0, description="smallest change that counts as an improvement")


class CSVLoggerSpec(StrictModel):
    """logs/csv/version_N/metrics.csv (always written: the plots read it)."""

    type: Literal["csv"]


class TensorBoardLoggerSpec(StrictModel):
    """logs/tensorboard/version_N/ (``tensorboard --logdir runs/``)."""

    type: Literal["tensorboard"]


class WandbLoggerSpec(StrictModel):
    """Weights & Biases (``pip install 'cellgi[wandb]'``); files under logs/wandb/."""

    type: Literal["wandb"]
    project: str = Field("cellgi", min_length=1)
    entity: str | None = None
    name: str | None = Field(None, description="run name (default: the spec's name)")
    tags: list[str] = Field(default_factory=list)
    offline: bool = Field(False, description="write locally only (wandb sync later)")


class MLflowLoggerSpec(StrictModel):
    """MLflow (``pip install 'cellgi[mlflow]'``)."""

    type: Literal["mlflow"]
    experiment_name: str = Field("cellgi", min_length=1)
    run_name: str | None = Field(None, description="default: the spec's name")
    tracking_uri: str | None = Field(
        None, description="server URL or file store (default: a file store in the run folder, logs/mlruns)"
    )
    tags: dict[str, str] = Field(default_factory=dict)


LoggerSpec = Annotated[
    Union[CSVLoggerSpec, TensorBoardLoggerSpec, WandbLoggerSpec, MLflowLoggerSpec], Field(discriminator="type")
]


class MetricsSpec(StrictModel):
    """Thresholds of the interaction metrics (docs/training.md#metrics) and whether sample weights count.

    The defaults are the epsilon cutoffs of Costanzo et al. 2016: intermediate ``epsilon < -0.08`` /
    ``> 0.08``, stringent ``epsilon < -0.12`` / ``> 0.16``. Both comparisons are strict, so a neutral
    pair (epsilon 0) is a non-example of both classes.
    """

    strong_threshold: float = Field(DEFAULT_THRESHOLDS["strong_threshold"], ge=0, description="|score| above which an interaction is strong")
    negative_threshold: float = Field(
        DEFAULT_THRESHOLDS["negative_threshold"], le=0, description="measured score below which an interaction is negative (auprc_neg, auroc_neg)"
    )
    negative_stringent_threshold: float = Field(
        DEFAULT_THRESHOLDS["negative_stringent_threshold"], le=0, description="stringent negative cutoff (auprc_neg_stringent, auroc_neg_stringent)"
    )
    positive_threshold: float = Field(
        DEFAULT_THRESHOLDS["positive_threshold"], ge=0, description="measured score above which an interaction is positive (auprc_pos, auroc_pos)"
    )
    positive_stringent_threshold: float = Field(
        DEFAULT_THRESHOLDS["positive_stringent_threshold"], ge=0, description="stringent positive cutoff (auprc_pos_stringent, auroc_pos_stringent)"
    )
    weighted: bool = Field(
        True,
        description="each sample counts with its weight (a weight column, weight_from_pvalue, a sampler's "
        "weights); false: every measured sample counts once",
    )

    @model_validator(mode="after")
    def _ordered(self) -> "MetricsSpec":
        if self.negative_stringent_threshold > self.negative_threshold:
            raise ValueError(
                f"negative_stringent_threshold ({self.negative_stringent_threshold}) must not be above "
                f"negative_threshold ({self.negative_threshold})"
            )
        if self.positive_stringent_threshold < self.positive_threshold:
            raise ValueError(
                f"positive_stringent_threshold ({self.positive_stringent_threshold}) must not be below "
                f"positive_threshold ({self.positive_threshold})"
            )
        return self


class BaselineSpec(StrictModel):
    """The short form of the two built-in baselines, kept for specs written before ``training.baselines``:
    ``enabled: false`` means ``baselines: []``, ``alpha`` sets the additive baseline's ridge penalty."""

    enabled: bool = True
    alpha: float | None = Field(None, gt=0, description="ridge penalty of the per-gene additive model")


class BlendSpec(StrictModel):
    """How the stack's weights are chosen from the validation rows (cellgi/experiments/blend.py): ``nnls``
    least squares on every row; ``average`` the members' mean, scaled; ``shrink`` nnls shrunk toward the
    average by cross-fitting over the validation genes; ``select`` the best member alone unless a blend
    wins out of fold in ``confidence`` of bootstraps over the validation genes."""

    rule: Literal["nnls", "average", "shrink", "select"] = Field(
        "shrink", description="nnls | average | shrink | select (docs/training.md#stacking)")
    folds: int = Field(5, ge=2, le=50, description="groups of validation genes for cross-fitting (shrink, select)")
    bootstraps: int = Field(200, ge=10, description="resamples of the validation genes (select)")
    confidence: float = Field(0.9, gt=0.5, lt=1.0,
                              description="share of bootstraps another candidate must win to replace the best member (select)")


class StackSpec(StrictModel):
    """Blend the network with baselines after training, weights fitted on the validation split
    (docs/training.md#stacking)."""

    blend: BlendSpec = Field(default_factory=BlendSpec, description="how the weights are chosen on validation")

    baselines: list[str] = Field(
        default_factory=lambda: ["features"], min_length=1,
        description="which of training.baselines join the blend (their type names: features = trees on set "
        "features, additive = per-gene ridge, or a plugin's)",
    )

    @field_validator("baselines")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"a baseline is repeated in {v}")
        return v


class TrainingSpec(StrictModel):
    max_epochs: int = Field(10, ge=1)
    loss: component("loss") = Field(default_factory=lambda: {"type": "logcosh"})  # type: ignore[valid-type]
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    scheduler: SchedulerSpec = Field(default_factory=SchedulerSpec)
    gradient_clip_val: float | None = Field(1.0, gt=0)
    trainer: TrainerSpec = Field(default_factory=TrainerSpec)
    checkpoint: CheckpointSpec = Field(default_factory=CheckpointSpec)
    early_stopping: EarlyStoppingSpec | None = Field(None, description="stop when the monitor stops improving")
    metrics: MetricsSpec = Field(default_factory=MetricsSpec)
    baselines: list[component("baseline")] = Field(  # type: ignore[valid-type]
        default_factory=lambda: [{"type": "additive"}, {"type": "features"}],
        description="predictors fitted beside the network on the training split and reported as "
        "baseline_<type>.* in metrics.json (baseline components: additive, features, or a plugin's); [] for none",
    )
    baseline: BaselineSpec | None = Field(
        None, description="short form kept for older specs: {enabled: false} = no baselines, alpha = the "
        "additive baseline's alpha (folded into training.baselines when the spec is read)",
    )
    limit_train_batches: int | float | None = Field(
        None, description="Lightning limit (debugging): batches per epoch (int >= 1) or a fraction in (0, 1]")
    log_every_n_steps: int = Field(20, ge=1)
    loggers: list[LoggerSpec] = Field(  # type: ignore[valid-type]
        default_factory=lambda: [TensorBoardLoggerSpec(type="tensorboard")],
        description="experiment loggers besides the CSV log (always written): tensorboard, wandb, mlflow",
    )
    seeds: list[int] | None = Field(
        None, min_length=1,
        description="train one run per seed into one replicates folder, as `cellgi train --seeds` (which "
        "takes precedence): mean ± sd of every metric, and with two seeds or more a seed ensemble whose "
        "folder predicts as the members' mean; each run's `seed` is replaced, the split stays the same",
    )

    stack: StackSpec | None = Field(
        None,
        description="after training, blend the network (or the seed ensemble) with these baselines, weights "
        "fitted on the validation split; the run folder then predicts with the blend (stack.json)",
    )

    @model_validator(mode="before")
    @classmethod
    def _short_baseline_form(cls, data: Any) -> Any:
        """Fold the short form ``baseline: {enabled, alpha}`` into ``baselines`` (the field stays None)."""
        if not isinstance(data, dict) or data.get("baseline") is None:
            return data
        try:
            short = BaselineSpec.model_validate(data["baseline"])
        except ValueError:  # left to the field's own validation, which names the key
            return data
        data = {**data, "baseline": None}
        if not short.enabled:
            data["baselines"] = []
        elif short.alpha is not None:
            entries = data.get("baselines")
            entries = [{"type": "additive"}, {"type": "features"}] if entries is None else list(entries)
            if not any(isinstance(e, dict) and e.get("type") == "additive" for e in entries):
                raise ValueError("training.baseline.alpha sets the additive baseline's penalty, but "
                                 "training.baselines lists no additive baseline")
            data["baselines"] = [{**e, "alpha": short.alpha} if isinstance(e, dict) and e.get("type") == "additive"
                                 else e for e in entries]
        return data

    @model_validator(mode="after")
    def _baselines(self) -> "TrainingSpec":
        kinds = [entry.type for entry in self.baselines]
        repeated = sorted({k for k in kinds if kinds.count(k) > 1})
        if repeated:
            raise ValueError(f"training.baselines lists {repeated} more than once (their metrics would collide)")
        if self.stack is not None:
            missing = [b for b in self.stack.baselines if b not in kinds]
            if missing:
                raise ValueError(
                    f"stack blends the baselines with the network: {missing} not in training.baselines "
                    f"({kinds or 'none: training.baseline.enabled is false or training.baselines is []'})")
        return self

    @field_validator("limit_train_batches")
    @classmethod
    def _some_training(cls, v: int | float | None) -> int | float | None:
        """0 batches would train nothing and write no checkpoint."""
        if v is not None and (v <= 0 or (isinstance(v, float) and v > 1)):
            raise ValueError(f"limit_train_batches must be a number of batches >= 1 or a fraction in (0, 1], got {v}")
        return v

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, v: list[int] | None) -> list[int] | None:
        if v is not None:
            if any(s < 0 for s in v):
                raise ValueError("seeds must be >= 0")
            if len(set(v)) != len(v):
                raise ValueError(f"a seed is repeated in {v}")
        return v


def logged_metric_keys(spec: Spec) -> list[str]:
    """Every per-epoch key a run of ``spec`` logs, which ``training.checkpoint.monitor`` and
    ``training.early_stopping.monitor`` can name: ``train/loss_epoch``, ``val/loss`` and ``train/`` and
    ``val/`` of every metric (per-target keys ``val/<target>/<metric>`` too when there are several targets)."""
    # imported here for startup time: the metrics import torch, and only a spec read from a file (whose
    # monitors are checked) needs their names
    from cellgi.metrics.interaction import InteractionMetrics

    with warnings.catch_warnings():  # torchmetrics' notes on building its metrics
        warnings.simplefilter("ignore")
        names = list(InteractionMetrics(spec.data.targets, spec.training.metrics.strong_threshold,
                                        sync=False).compute())
    keys = ["train/loss_epoch", "val/loss"]
    for stage in ("train", "val"):
        keys += [f"{stage}/{k}" for k in names]
    return keys


def monitor_problems(spec: Spec) -> list[tuple[tuple[str, ...], str]]:
    """``(key path, message)`` for each monitor (checkpoint, early stopping) naming no logged key."""
    t = spec.training
    given = [(("training", "checkpoint", "monitor"), t.checkpoint.monitor)]
    if t.early_stopping is not None:
        given.append((("training", "early_stopping", "monitor"), t.early_stopping.monitor))
    keys: list[str] | None = None
    out = []
    for loc, name in given:
        if name in ("val/pearson", "val/loss", "train/pearson", "train/loss_epoch"):
            continue  # logged by every run (spares building the metric list)
        keys = keys if keys is not None else logged_metric_keys(spec)
        if name not in keys:
            close = difflib.get_close_matches(name, keys, n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            out.append((loc, f"{name!r} is not a value a run logs{hint} (it logs: {', '.join(keys)})"))
    return out
