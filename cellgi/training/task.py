"""The LightningModule of a run: loss, optimiser and schedule, metrics in original units, checkpoints.

:class:`InteractionTask` wraps a :class:`~cellgi.nn.model.LazyDango`. It

- trains on normalised targets with the spec's registered loss (``training.loss``), honouring
  per-sample weights and NaN (unmeasured) targets;
- optimises with AdamW and a per-step schedule: linear warmup over ``warmup_fraction`` of all steps,
  then cosine decay to ``min_lr_ratio`` (or constant);
- measures train/val metrics every epoch and, in ``trainer.test``, the final metrics of every split it
  is given, all with :class:`~cellgi.metrics.InteractionMetrics` on inverse-normalised
  predictions (so they are in the units of the data, and gathered correctly under DDP);
- logs loss and throughput (samples/s over all ranks) to the progress bar;
- writes the ``cellgi`` metadata (spec, genes, mapper, graph, normaliser, digest) into every checkpoint,
  so that a checkpoint alone rebuilds the model (:func:`cellgi.predictors.network.load_network`).
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Sequence

import lightning as L
import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torchmetrics import Metric
from torchmetrics.aggregation import CatMetric, MeanMetric

from cellgi.data.batch import PerturbationBatch
from cellgi.registry import build
from cellgi.runfolder.checkpoint import CHECKPOINT_KEY, compute_digest
from cellgi.metrics import InteractionMetrics
from cellgi.spec.training import TrainingSpec

__all__ = ["RNG_KEY", "InteractionTask", "LayerWeightMean", "lr_lambda"]

#: key of the random number generator states in a Lightning checkpoint
RNG_KEY = "cellgi_rng"


def lr_lambda(step: int, *, total_steps: int, warmup_fraction: float, min_lr_ratio: float, kind: str) -> float:
    """Learning-rate multiplier at optimiser step ``step`` (0-based).

    Linear warmup from ``1/warmup`` to 1 over ``warmup = round(warmup_fraction * total_steps)`` steps,
    then ``cosine``: ``min + (1 - min) * (1 + cos(pi * progress)) / 2`` down to ``min_lr_ratio`` at the
    last step, or ``constant``: 1.
    """
    total = max(1, int(total_steps))
    warm = int(round(warmup_fraction * total))
    if warm > 0 and step < warm:
        return (step + 1) / warm
    if kind == "constant":
        return 1.0
    span = max(1, total - warm)
    progress = min(1.0, max(0.0, (step - warm) / span))
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


class LayerWeightMean(Metric):
    """Sample-weighted mean of per-batch ``[L, W]`` aggregation weights (DDP-synced)."""

    full_state_update = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("values", default=[], dist_reduce_fx="cat")
        self.add_state("counts", default=[], dist_reduce_fx="cat")

    def update(self, weights: Tensor, count: int) -> None:
        self.values.append(weights.detach().reshape(1, -1).to(torch.float64))  # type: ignore[attr-defined]
        self.counts.append(torch.tensor([float(count)], dtype=torch.float64, device=weights.device))  # type: ignore[attr-defined]

    def compute(self) -> Tensor:
        vals, cnts = self.values, self.counts
        if isinstance(vals, list):
            if not vals:
                return torch.zeros(0, dtype=torch.float64)
            vals, cnts = torch.cat(vals), torch.cat(cnts)
        return (vals * cnts.view(-1, 1)).sum(0) / cnts.sum().clamp_min(1.0)


class InteractionTask(L.LightningModule):
    """Training and evaluation of a lazy Dango model (see the module docstring).

    Args:
        model: the model (``forward(batch) -> (pred [B, T], reps)``).
        training: the validated ``training:`` spec section.
        target_names: the ``T`` targets.
        y_mean, y_std: ``[T]`` normaliser statistics (predictions in original units are
            ``pred * y_std + y_mean``).
        metadata: the ``cellgi`` checkpoint entry (:func:`~cellgi.runfolder.checkpoint.build_metadata`);
            None disables writing it (then checkpoints cannot rebuild the model).
        final_stages: names of the dataloaders ``trainer.test`` receives, in order.
        reporter: called on the first process after every training epoch with
            ``(epoch, max_epochs, {"train/...": v, "val/...": v}, seconds)``.
    """

    def __init__(
        self,
        model: nn.Module,
        training: TrainingSpec,
        target_names: Sequence[str],
        y_mean: Tensor,
        y_std: Tensor,
        *,
        metadata: dict[str, Any] | None = None,
        final_stages: Sequence[str] = ("test",),
        reporter: Callable[[int, int, dict[str, float], float], None] | None = None,
    ):
        super().__init__()
        self.model = model
        self.training_spec = training
        self.target_names = list(target_names)
        self.loss_fn = build("loss", training.loss)
        self.register_buffer("y_mean", torch.as_tensor(y_mean, dtype=torch.float32).reshape(-1), persistent=False)
        self.register_buffer("y_std", torch.as_tensor(y_std, dtype=torch.float32).reshape(-1), persistent=False)
        if self.y_mean.numel() != len(self.target_names) or self.y_std.numel() != len(self.target_names):
            raise ValueError("y_mean and y_std must have one entry per target")
        mspec = training.metrics
        # ModuleDict keys may not shadow nn.Module attributes ("train"): key = "<stage>_split"
        self.metrics = nn.ModuleDict(
            {f"{s}_split": InteractionMetrics.from_spec(self.target_names, mspec) for s in ("train", "val")}
        )
        self.val_loss = MeanMetric()
        self.train_loss = MeanMetric()
        self.reporter = reporter
        self._val_values: dict[str, float] = {}
        self._t_epoch = time.perf_counter()
        self.final_stages = list(final_stages)
        self.final_metrics = nn.ModuleDict(
            {f"{s}_split": InteractionMetrics.from_spec(self.target_names, mspec) for s in self.final_stages}
        )
        self.test_pred = CatMetric(nan_strategy="disable")
        self.test_target = CatMetric(nan_strategy="disable")
        self.layer_weights = LayerWeightMean()
        self.metadata = metadata
        #: filled by ``trainer.test``: stage -> metric -> value (identical on every rank)
        self.results: dict[str, dict[str, float]] = {}
        #: filled by ``trainer.test``: predicted and measured test targets, original units
        self.test_scatter: tuple[Tensor, Tensor] | None = None
        #: filled by ``trainer.test``: mean aggregation weights ``[L, W]`` on the test split (or None)
        self.aggregation_weights: Tensor | None = None
        self._t_step: float | None = None
        self._throughput: float | None = None
        self._ddp_ignore_graph_buffers()

    def _ddp_ignore_graph_buffers(self) -> None:
        """Sparse buffers (the shared adjacency) are built identically on every rank from the same data,
        and DDP cannot broadcast sparse CSR tensors: tell DDP to leave them alone."""
        names = [n for n, b in self.named_buffers() if b.layout != torch.strided]
        if names:
            DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(self, names)

    # ------------------------------------------------------------------------------------ basics
    def forward(self, batch: PerturbationBatch) -> tuple[Tensor, dict[str, Any]]:
        return self.model(batch)

    def to_original(self, y: Tensor) -> Tensor:
        """Normalised values -> original units."""
        return y.float() * self.y_std + self.y_mean

    @staticmethod
    def _num_valid(batch: PerturbationBatch) -> int:
        return int((~torch.isnan(batch.y)).any(dim=1).sum())

    # ---------------------------------------------------------------------------------- training
    def on_train_epoch_start(self) -> None:
        self._t_epoch = time.perf_counter()
        self._val_values = {}

    def on_train_batch_start(self, batch: PerturbationBatch, batch_idx: int) -> None:
        self._t_step = time.perf_counter()

    def training_step(self, batch: PerturbationBatch, batch_idx: int) -> Tensor:
        pred, _ = self.model(batch)
        loss = self.loss_fn(pred.float(), batch.y, batch.weight)
        b = batch.num_samples
        self.log("train/loss", loss.detach(), on_step=True, on_epoch=False, prog_bar=True, batch_size=b)
        valid = (~torch.isnan(batch.y)).any(dim=1).sum().to(torch.float32)  # no host sync
        self.train_loss.update(loss.detach().float(), weight=valid)
        self.metrics["train_split"].update(self.to_original(pred.detach()), self.to_original(batch.y), batch.weight)
        return loss

    def on_train_batch_end(self, outputs: Any, batch: PerturbationBatch, batch_idx: int) -> None:
        if self._t_step is None:
            return
        dt = max(time.perf_counter() - self._t_step, 1e-9)
        rate = batch.num_samples * self.trainer.world_size / dt
        self._throughput = rate if self._throughput is None else 0.9 * self._throughput + 0.1 * rate
        self.log("train/samples_per_s", self._throughput, on_step=True, on_epoch=False, prog_bar=True, batch_size=1)

    def on_train_epoch_end(self) -> None:
        values = {f"train/{k}": v for k, v in self._log_metrics("train", self.metrics["train_split"]).items()}
        if self.train_loss.update_count:
            loss = float(self.train_loss.compute())  # weighted over all ranks
            self.log("train/loss_epoch", loss, sync_dist=False)
            values["train/loss_epoch"] = loss
        self.train_loss.reset()
        if self.reporter is not None and self.trainer.is_global_zero:
            values.update(self._val_values)
            self.reporter(self.current_epoch, self.trainer.max_epochs, values, time.perf_counter() - self._t_epoch)

    # -------------------------------------------------------------------------------- validation
    def validation_step(self, batch: PerturbationBatch, batch_idx: int) -> None:
        pred, _ = self.model(batch)
        n = self._num_valid(batch)
        if n:
            loss = self.loss_fn(pred.float(), batch.y, batch.weight)
            self.val_loss.update(loss.detach(), weight=float(n))
        self.metrics["val_split"].update(self.to_original(pred), self.to_original(batch.y), batch.weight)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            self.metrics["val_split"].reset()
            self.val_loss.reset()
            return
        vals = self._log_metrics("val", self.metrics["val_split"])
        self._val_values = {f"val/{k}": v for k, v in vals.items()}
        if self.val_loss.update_count:
            vloss = float(self.val_loss.compute())
            self.log("val/loss", vloss, sync_dist=False)
            self._val_values["val/loss"] = vloss
        self.val_loss.reset()

    def _log_metrics(self, stage: str, metrics: InteractionMetrics) -> dict[str, float]:
        values = metrics.compute()  # gathered over ranks by torchmetrics
        metrics.reset()
        # NaN (undefined) values are logged too so that every epoch has the same columns; the
        # checkpoint monitor treats NaN as "not better"
        self.log_dict({f"{stage}/{k}": float(v) for k, v in values.items()}, sync_dist=False)
        return values

    # -------------------------------------------------------------------------------------- test
    def test_step(self, batch: PerturbationBatch, batch_idx: int, dataloader_idx: int = 0) -> None:
        stage = self.final_stages[dataloader_idx]
        pred, reps = self.model(batch)
        p, y = self.to_original(pred), self.to_original(batch.y)
        self.final_metrics[f"{stage}_split"].update(p, y, batch.weight)
        if stage == "test":
            valid = (~torch.isnan(batch.y)).any(dim=1)
            self.test_pred.update(p[valid])
            self.test_target.update(y[valid])
            law = reps.get("layer_aggregation_weights")
            if law is not None and bool(valid.any()):
                self.layer_weights.update(law, int(valid.sum()))

    def on_test_epoch_end(self) -> None:
        self.results = {}
        for stage in self.final_stages:
            self.results[stage] = self.final_metrics[f"{stage}_split"].compute()
            self.final_metrics[f"{stage}_split"].reset()
        if "test" in self.final_stages:
            if self.test_pred.update_count:
                self.test_scatter = (self.test_pred.compute().cpu(), self.test_target.compute().cpu())
            law = self.layer_weights.compute() if self.layer_weights.update_count else None
            self.aggregation_weights = law.cpu() if law is not None and law.numel() else None
            self.test_pred.reset()
            self.test_target.reset()
            self.layer_weights.reset()

    # ------------------------------------------------------------------------------- optimisation
    def configure_optimizers(self) -> Any:
        opt_spec = self.training_spec.optimizer
        sched_spec = self.training_spec.scheduler
        optimizer = torch.optim.AdamW(
            self.parameters(), lr=opt_spec.lr, betas=tuple(opt_spec.betas), weight_decay=opt_spec.weight_decay
        )
        total = int(self.trainer.estimated_stepping_batches)
        kind, warm, floor = sched_spec.kind, sched_spec.warmup_fraction, sched_spec.min_lr_ratio

        def fn(step: int) -> float:
            return lr_lambda(step, total_steps=total, warmup_fraction=warm, min_lr_ratio=floor, kind=kind)

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, fn)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}

    # -------------------------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # random number generator states (dropout): a resumed run continues exactly as an uninterrupted one
        rng: dict[str, Any] = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        checkpoint[RNG_KEY] = rng
        if self.metadata is None:
            return
        meta = dict(self.metadata)
        meta["digest"] = compute_digest(checkpoint["state_dict"], meta)
        checkpoint[CHECKPOINT_KEY] = meta

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # applied when training starts, not here: between loading and the first training step a resumed run
        # iterates the sanity-check validation loader, and creating a DataLoader iterator draws from the global
        # generator (its base seed), which would shift every dropout mask after it
        self._pending_rng = checkpoint.get(RNG_KEY) or None
        self._apply_rng()

    def on_train_start(self) -> None:
        self._apply_rng()
        self._pending_rng = None

    def _apply_rng(self) -> None:
        rng = getattr(self, "_pending_rng", None)
        if not rng:
            return
        torch.set_rng_state(rng["torch"].cpu())
        if "cuda" in rng and torch.cuda.is_available() and len(rng["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([t.cpu() for t in rng["cuda"]])
